// Sessions: batched prefill equals token-by-token feeding bit for bit, pending-token bookkeeping,
// stops, cancellation, and errors that leave the session unchanged.
#include <gtest/gtest.h>

#include <cstring>

#include "core/error.h"
#include "engine/session.h"
#include "models/model_fixtures.h"

namespace flashrt::testing {
namespace {

std::vector<int32_t> prompt_of(const std::string& model, int T) {
  return Reference(ref_model_dir(model)).ids("T" + std::to_string(T) + ".input_ids");
}

TEST(EngineSession, BatchSizeDoesNotChangeAnyBit) {
  for (const char* name : {"qwen3", "qwen35"}) {
    const auto model = load_model(ref_model_dir(name));
    const auto be = make_cpu_backend();
    const auto ids = prompt_of(name, 96);
    SessionOptions big, small;
    big.max_ctx = small.max_ctx = 128;
    small.max_batch = 7;  // 96 tokens fed as 13 uneven batches
    big.gdn_mode = small.gdn_mode = GdnMode::kRecurrent;
    Session a(*model, *be, big), b(*model, *be, small);
    a.append(ids);
    for (int32_t id : ids) b.append(std::vector<int32_t>{id});  // and one token at a time
    EXPECT_EQ(a.logits(), b.logits()) << name;
    ASSERT_EQ(a.arena().layout().total_bytes(), b.arena().layout().total_bytes());
    EXPECT_EQ(0, std::memcmp(a.arena().base(), b.arena().base(), a.arena().layout().total_bytes()))
        << name;
  }
}

TEST(EngineSession, ResetStartsFromAnEmptyBoundary) {
  for (const char* name : {"qwen3", "qwen35"}) {
    const auto model = load_model(ref_model_dir(name));
    const auto be = make_cpu_backend();
    const auto ids = prompt_of(name, 96);
    Session fresh(*model, *be), reused(*model, *be);
    reused.append(prompt_of(name, 300));
    reused.generate(5, SamplerParams::greedy(), {});
    reused.reset();
    EXPECT_EQ(reused.pos(), 0);
    EXPECT_EQ(reused.pending(), -1);
    fresh.append(ids);
    reused.append(ids);
    EXPECT_EQ(reused.logits(), fresh.logits()) << name << ": state left over from before the reset";
  }
}

TEST(EngineSession, PendingTokenAndStops) {
  const auto model = load_model(ref_model_dir("qwen3"));
  const auto be = make_cpu_backend();
  const auto ids = prompt_of("qwen3", 7);
  Session s(*model, *be);
  s.append(ids);
  EXPECT_EQ(s.pos(), 7);
  EXPECT_EQ(s.pending(), -1);
  auto r = s.generate(5, SamplerParams::greedy(), {});
  EXPECT_EQ(r.finish, FinishReason::kLength);
  ASSERT_EQ(r.tokens.size(), 5u);
  EXPECT_EQ(s.pos(), 11);  // the last token is sampled but not yet fed
  EXPECT_EQ(s.pending(), r.tokens.back());
  auto all = ids;
  all.insert(all.end(), r.tokens.begin(), r.tokens.end());
  EXPECT_EQ(s.tokens(), all);

  // Stopping at a token includes it; a callback can cancel.
  Session t(*model, *be);
  t.append(ids);
  const std::vector<int32_t> stop = {r.tokens[2]};
  auto rs = t.generate(20, SamplerParams::greedy(), stop);
  EXPECT_EQ(rs.finish, FinishReason::kStop);
  EXPECT_EQ(rs.tokens, std::vector<int32_t>(r.tokens.begin(), r.tokens.begin() + 3));
  int seen = 0;
  auto rc = t.generate(20, SamplerParams::greedy(), {}, [&](int32_t) { return ++seen < 2; });
  EXPECT_EQ(rc.finish, FinishReason::kCancelled);
  EXPECT_EQ(rc.tokens.size(), 2u);
}

TEST(EngineSession, ErrorsLeaveTheSessionUnchanged) {
  const auto model = load_model(ref_model_dir("qwen3"));
  const auto be = make_cpu_backend();
  SessionOptions o;
  o.max_ctx = 10;
  Session s(*model, *be, o);
  s.append(std::vector<int32_t>{1, 2, 3});
  const auto before = s.logits();
  EXPECT_THROW(s.append(std::vector<int32_t>{4, 5000}), Error);  // bad id
  EXPECT_THROW(s.append(std::vector<int32_t>(8, 1)), Error);     // overflow
  EXPECT_EQ(s.pos(), 3);
  EXPECT_EQ(s.logits(), before);
  Session empty(*model, *be, o);
  EXPECT_THROW(empty.next_token(SamplerParams::greedy()), Error);  // nothing fed yet
  // Generation stops cleanly when the context fills.
  auto r = s.generate(100, SamplerParams::greedy(), {});
  EXPECT_EQ(r.finish, FinishReason::kContextFull);
  EXPECT_EQ(s.pos(), 10);
}

}  // namespace
}  // namespace flashrt::testing

// Speculative decoding (engine/speculative.h): greedy speculation gives plain greedy's tokens for
// every drafter and every k, with rejections at every draft position, across the 64-token chunk
// grid; the slot afterwards holds plain decoding's live bytes; a capsule taken between
// speculative steps restores and continues the same; and with temperature > 0 the speculated
// token's distribution is the target's (chi-square).
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "capsule/capsule_fixture.h"
#include "chi_square.h"
#include "core/thread_pool.h"
#include "engine/speculative.h"

namespace flashrt::testing {
namespace {

struct Pair {
  CapsuleModel target, draft;
};

void PrintTo(const Pair& p, std::ostream* os) {
  *os << p.target.name << " drafted by " << p.draft.name;
}

// Random fixtures (the same 1024-token vocabulary) drafting for each other: nearly every draft is
// rejected. The trained pair shares a tokenizer: many drafts are accepted.
std::vector<Pair> pairs() {
  return {{{"qwen3", false}, {"qwen35", false}},
          {{"qwen35", false}, {"qwen3", false}},
          {{"pycoder-hybrid-12m", true}, {"pycoder-dense-7m", true}},
          {{"pycoder-dense-7m", true}, {"pycoder-hybrid-12m", true}}};
}

// Proposes what plain greedy decoding will produce for the next j tokens and then a wrong one,
// with j = 0, 1, .., k, 0, 1, ..: a rejection at every draft position, and full acceptance.
class ScriptedDrafter : public Drafter {
 public:
  ScriptedDrafter(std::vector<int32_t> full, int32_t vocab) : full_(std::move(full)), V_(vocab) {}
  std::string name() const override { return "scripted"; }
  Draft propose(std::span<const int32_t> ctx, int k, const SamplerParams&) override {
    Draft d;
    const int j = calls_++ % (k + 1);
    for (int i = 0; i < k; ++i) {
      const size_t at = ctx.size() + static_cast<size_t>(i);
      const int32_t right = at < full_.size() ? full_[at] : 0;
      d.tokens.push_back(i < j ? right : (right + 1) % V_);
    }
    return d;
  }

 private:
  std::vector<int32_t> full_;
  int32_t V_;
  int calls_ = 0;
};

// These tests run thousands of small steps; under ctest -j beside other test processes a spinning
// two-thread pool per process loses most of its time slices, so each process of these tests takes
// one thread (no effect once the pool exists, as in a whole-binary run).
void one_thread() {
  ThreadPool::set_default_threads(1);
}

SessionOptions options() {
  SessionOptions o;
  o.max_ctx = 512;
  return o;
}

class Speculative : public ::testing::TestWithParam<Pair> {
 protected:
  void SetUp() override {
    one_thread();
    target_ = load_model(GetParam().target.dir());
    draft_ = load_model(GetParam().draft.dir());
    be_ = make_cpu_backend();
    prompt_ = GetParam().target.prompt();
  }
  std::unique_ptr<Session> prompted() {
    auto s = std::make_unique<Session>(*target_, *be_, options());
    s->append(prompt_);
    return s;
  }
  std::unique_ptr<Model> target_, draft_;
  std::unique_ptr<Backend> be_;
  std::vector<int32_t> prompt_;
};

// Pieces of one generation: the slot is compared with plain decoding's after each.
const std::vector<int> kPieces = {7, 1, 12, 20, 30};

TEST_P(Speculative, GreedyIsPlainGreedyForEveryDrafterAndK) {
  int total = 0;
  for (int n : kPieces) total += n;
  // The generation crosses a multiple of 64 (the chunked GDN's grid; verify steps never chunk, and
  // neither does CPU decoding under --gdn auto, so this guards against either starting to).
  ASSERT_NE(prompt_.size() / 64, (prompt_.size() + static_cast<size_t>(total)) / 64);
  auto plain = prompted();
  std::vector<std::vector<uint8_t>> plain_states;
  std::vector<int32_t> full = prompt_;
  for (int n : kPieces) {
    const auto r = plain->generate(n, SamplerParams::greedy(), {});
    full.insert(full.end(), r.tokens.begin(), r.tokens.end());
    plain_states.push_back(live_state(*plain));
  }
  for (const std::string kind : {"scripted", "ngram", "draft"}) {
    for (int k = 1; k <= 8; ++k) {
      SCOPED_TRACE(kind + " k=" + std::to_string(k));
      auto s = prompted();
      std::unique_ptr<Drafter> drafter;
      if (kind == "scripted")
        drafter = std::make_unique<ScriptedDrafter>(full, target_->cfg.vocab);
      else if (kind == "ngram")
        drafter = std::make_unique<NgramDrafter>(3, 1);
      else
        drafter = std::make_unique<DraftModelDrafter>(*draft_, *be_, options());
      SpeculativeDecoder dec(*s, *drafter, {.draft_max = k, .adaptive = false});
      std::vector<int32_t> got = prompt_;
      for (size_t piece = 0; piece < kPieces.size(); ++piece) {
        const auto r = dec.generate(kPieces[piece], SamplerParams::greedy(), {});
        ASSERT_EQ(r.finish, FinishReason::kLength);
        got.insert(got.end(), r.tokens.begin(), r.tokens.end());
        ASSERT_EQ(got, std::vector<int32_t>(full.begin(), full.begin() + got.size()))
            << "piece " << piece;
        ASSERT_EQ(live_state(*s), plain_states[piece]) << "slot after piece " << piece;
      }
      if (kind == "scripted") {  // every position rejected, and everything accepted, somewhere
        EXPECT_GT(dec.stats().accepted, 0);
        EXPECT_LT(dec.stats().accepted, dec.stats().drafted);
      }
    }
  }
}

TEST_P(Speculative, StopTokensAndLimitsEndWhereGenerateEnds) {
  auto plain = prompted();
  const auto ref = plain->generate(40, SamplerParams::greedy(), {});
  const std::vector<int32_t> stop = {ref.tokens[13]};  // a token it will produce
  auto a = prompted();
  const auto want = a->generate(40, SamplerParams::greedy(), stop);
  std::vector<int32_t> full = prompt_;
  full.insert(full.end(), ref.tokens.begin(), ref.tokens.end());
  auto s = prompted();
  ScriptedDrafter drafter(full, target_->cfg.vocab);
  SpeculativeDecoder dec(*s, drafter, {.draft_max = 8, .adaptive = false});
  const auto got = dec.generate(40, SamplerParams::greedy(), stop);
  EXPECT_EQ(got.tokens, want.tokens);
  EXPECT_EQ(got.finish, FinishReason::kStop);
  EXPECT_EQ(live_state(*s), live_state(*a));
  EXPECT_EQ(s->pending(), a->pending());
}

// The other ways generation ends or is shaped, each against Session::generate on the same slot
// options: a cancel (and a throw) from the callback in the middle of a step's accepted drafts,
// greedy with logit bias and penalties (the host-side pick), a context that fills up, and a batch
// size smaller than a verify step's rows at most (owed tokens settled mid-run).
TEST_P(Speculative, CancelsPenaltiesFullContextsAndSmallBatchesMatchGenerate) {
  SamplerParams shaped = SamplerParams::greedy();
  shaped.repeat_penalty = 1.3f;
  shaped.presence_penalty = 0.2f;
  shaped.logit_bias = {{7, 2.5f}, {11, -100.0f}};
  struct Run {
    const char* what;
    SamplerParams p;
    SessionOptions o;
    int max_new;
    int cancel_at;  // -1: none; the callback returns false at that token
    bool throw_instead;
  };
  SessionOptions small_batch = options();
  small_batch.max_batch = 6;
  SessionOptions full = options();
  full.max_ctx = static_cast<int64_t>(prompt_.size()) + 23;
  const std::vector<Run> runs = {
      {"cancel", SamplerParams::greedy(), options(), 40, 9, false},
      {"throw", SamplerParams::greedy(), options(), 40, 9, true},
      {"bias and penalties", shaped, options(), 40, -1, false},
      {"small batch", SamplerParams::greedy(), small_batch, 60, -1, false},
      {"context full", SamplerParams::greedy(), full, 60, -1, false}};
  for (const Run& run : runs) {
    SCOPED_TRACE(run.what);
    auto go = [&](Session& s, SpeculativeDecoder* dec) {
      int n = 0;
      auto cb = [&](int32_t) {
        if (n++ != run.cancel_at) return true;
        if (run.throw_instead) throw std::runtime_error("callback");
        return false;
      };
      GenerateResult r;
      try {
        r = dec ? dec->generate(run.max_new, run.p, {}, cb)
                : s.generate(run.max_new, run.p, {}, cb);
      } catch (const std::runtime_error&) {
        r.finish = FinishReason::kStop;  // a marker: both must throw
      }
      return std::make_pair(r.finish, s.tokens());
    };
    Session a(*target_, *be_, run.o), b(*target_, *be_, run.o);
    a.append(prompt_);
    b.append(prompt_);
    const auto want = go(a, nullptr);
    std::vector<int32_t> full_ids = prompt_;
    {  // the plain continuation, for a drafter that is right most of the time
      Session c(*target_, *be_, run.o);
      c.append(prompt_);
      const auto r = c.generate(run.max_new, run.p, {});
      full_ids.insert(full_ids.end(), r.tokens.begin(), r.tokens.end());
    }
    ScriptedDrafter drafter(full_ids, target_->cfg.vocab);
    SpeculativeDecoder dec(b, drafter, {.draft_max = 8, .adaptive = false});
    const auto got = go(b, &dec);
    EXPECT_EQ(got.first, want.first);
    EXPECT_EQ(got.second, want.second);
    EXPECT_EQ(live_state(b), live_state(a));
  }
}

TEST_P(Speculative, ACapsuleBetweenStepsRestoresAndContinues) {
  auto s = prompted();
  DraftModelDrafter drafter(*draft_, *be_, options());
  SpeculativeDecoder dec(*s, drafter, {.draft_max = 5});
  dec.generate(10, SamplerParams::greedy(), {});
  const Capsule cap = s->snapshot();
  const auto after = dec.generate(25, SamplerParams::greedy(), {});

  Session b(*target_, *be_, options());
  b.restore(cap);
  DraftModelDrafter fresh(*draft_, *be_, options());
  SpeculativeDecoder dec2(b, fresh, {.draft_max = 3});
  EXPECT_EQ(dec2.generate(25, SamplerParams::greedy(), {}).tokens, after.tokens);
  Session c(*target_, *be_, options());
  c.restore(cap);
  EXPECT_EQ(c.generate(25, SamplerParams::greedy(), {}).tokens, after.tokens);
  EXPECT_EQ(live_state(b), live_state(c));
}

TEST_P(Speculative, SeededSamplingRepeats) {
  auto run = [&] {
    auto s = prompted();
    s->seed(42);
    DraftModelDrafter drafter(*draft_, *be_, options(), 42);
    SpeculativeDecoder dec(*s, drafter, {.draft_max = 4});
    return dec.generate(30, sampled(), {}).tokens;
  };
  const auto a = run();
  EXPECT_EQ(a.size(), 30u);
  EXPECT_EQ(a, run());
}

INSTANTIATE_TEST_SUITE_P(
    Pairs, Speculative, ::testing::ValuesIn(pairs()), [](const ::testing::TestParamInfo<Pair>& i) {
      return param_name({i.param.target, i.index}) + "_by_" + param_name({i.param.draft, i.index});
    });

// With temperature > 0 the first speculated token is distributed as the target's sampler says,
// for a one-hot draft (n-gram style, the most likely token proposed) and for a draft model's
// distribution: 2000 seeds, tokens with an expected count of 5 or more as bins, the rest pooled.
TEST(SpeculativeSampling, TheSpeculatedTokenHasTheTargetsDistribution) {
  one_thread();
  const auto target = load_model(trained_model_dir("pycoder-hybrid-12m"));
  const auto draft = load_model(trained_model_dir("pycoder-dense-7m"));
  const auto be = make_cpu_backend();
  const std::vector<int32_t> prompt = CapsuleModel{"pycoder-hybrid-12m", true}.prompt();
  SamplerParams p = sampled();
  p.top_k = 50;  // the sampler's own truncation, which the test covers too (and cheaper to sort)
  Session base(*target, *be, options());
  base.append(std::span<const int32_t>(prompt.data(), prompt.size() - 1));
  base.set_pending(prompt.back(), base.rng_state());
  const Capsule cap = base.snapshot();
  // The target's distribution of the token after the prompt.
  Session ref(*target, *be, options());
  ref.append(prompt);
  const TokenDistribution want = sampling_distribution(ref.logits(), {}, p);

  class Fixed : public Drafter {  // proposes one token with q one-hot
   public:
    explicit Fixed(int32_t t) : t_(t) {}
    std::string name() const override { return "fixed"; }
    Draft propose(std::span<const int32_t>, int k, const SamplerParams&) override {
      return {std::vector<int32_t>(static_cast<size_t>(k), t_), {}};
    }
    int32_t t_;
  };
  for (const std::string kind : {"one-hot", "draft model"}) {
    SCOPED_TRACE(kind);
    Session s(*target, *be, options());
    Fixed fixed(want.ids[0]);
    DraftModelDrafter model_drafter(*draft, *be, options(), 7);  // its own RNG runs on
    Drafter& d = kind == "one-hot" ? static_cast<Drafter&>(fixed) : model_drafter;
    expect_target_distribution(s, cap, d, p, want, kind.c_str());
  }
}

}  // namespace
}  // namespace flashrt::testing

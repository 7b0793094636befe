// Steps over the rows of several sequences (engine/step_runner.h): a sequence's logits and state
// are the same bits whether it runs alone or in a step with others, prefilling or decoding, on
// the dense and the hybrid model, with f32 and f16 KV caches. And the forward contract (tokens,
// logits, position) is kept for every sequence of a step.
#include <gtest/gtest.h>

#include "capsule/capsule_fixture.h"
#include "engine/step_runner.h"

namespace flashrt::testing {
namespace {

struct Case {
  std::string model;
  DType kv;
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.model << " kv " << dtype_name(c.kv);
}

class StepRunnerBatch : public ::testing::TestWithParam<Case> {};

TEST_P(StepRunnerBatch, EverySequenceGetsTheBitsItGetsAlone) {
  const Case& c = GetParam();
  const auto model = load_model(trained_model_dir(c.model));
  const auto be = make_cpu_backend();
  const Reference ref(trained_model_dir(c.model));
  SessionOptions o;
  o.max_ctx = 256;
  o.kv_dtype = c.kv;
  // Three prompts of different lengths; the second is fed in two parts, so one step mixes a
  // sequence prefilling with sequences decoding.
  const std::vector<std::vector<int32_t>> prompts = {
      ref.ids("p0.input_ids"), ref.ids("p2.input_ids"), std::vector<int32_t>{5}};
  const int kDecode = 6;

  // Alone: each session prefills, then decodes greedily; logits after every step.
  std::vector<std::vector<std::vector<float>>> alone(prompts.size());
  std::vector<std::unique_ptr<Session>> solo;
  for (size_t i = 0; i < prompts.size(); ++i) {
    auto s = std::make_unique<Session>(*model, *be, o);
    s->append(prompts[i]);
    alone[i].push_back(s->logits());
    for (int t = 0; t < kDecode; ++t) {
      s->next_token(SamplerParams::greedy());
      s->append({});  // feed it
      alone[i].push_back(s->logits());
    }
    solo.push_back(std::move(s));
  }

  // Together: the same sequences in shared steps of one runner.
  std::vector<std::unique_ptr<Session>> seqs;
  for (size_t i = 0; i < prompts.size(); ++i)
    seqs.push_back(std::make_unique<Session>(*model, *be, o));
  StepRunner runner(*model, *be, seqs[0]->arena().layout_ptr(), 64, 3);
  auto step = [&](const std::vector<std::vector<int32_t>>& ids) {
    std::vector<StepInput> in;
    for (size_t i = 0; i < seqs.size(); ++i)
      if (!ids[i].empty()) in.push_back({&seqs[i]->arena(), ids[i], seqs[i]->pos()});
    runner.run(in);
    for (auto& s : seqs) s->sync_from_arena();
  };
  const auto& p1 = prompts[1];
  const std::vector<int32_t> p1a(p1.begin(), p1.begin() + 5), p1b(p1.begin() + 5, p1.end());
  step({prompts[0], p1a, prompts[2]});
  step({{}, p1b, {}});  // one sequence alone in a step of the shared runner
  std::vector<size_t> at(prompts.size(), 0);
  for (int t = 0; t <= kDecode; ++t) {
    std::vector<std::vector<int32_t>> next(prompts.size());
    for (size_t i = 0; i < seqs.size(); ++i) {
      const auto l = seqs[i]->logits();
      ASSERT_EQ(l, alone[i][at[i]]) << "sequence " << i << " after step " << t;
      ++at[i];
      next[i] = {argmax(l)};
    }
    if (t < kDecode) step(next);
  }
  for (size_t i = 0; i < seqs.size(); ++i) {
    EXPECT_EQ(seqs[i]->tokens(), solo[i]->tokens()) << i;
    EXPECT_EQ(live_state(*seqs[i]), live_state(*solo[i])) << "sequence " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Models, StepRunnerBatch,
                         ::testing::Values(Case{"pycoder-hybrid-12m", DType::F32},
                                           Case{"pycoder-dense-7m", DType::F32},
                                           Case{"pycoder-hybrid-12m", DType::F16}),
                         [](const auto& info) {
                           std::string n =
                               info.param.model + "_" + std::string(dtype_name(info.param.kv));
                           for (char& ch : n)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });

TEST(StepRunner, RefusesStepsThatDoNotFit) {
  const auto model = load_model(trained_model_dir("pycoder-hybrid-12m"));
  const auto be = make_cpu_backend();
  SessionOptions o;
  o.max_ctx = 16;
  Session a(*model, *be, o), b(*model, *be, o);
  StepRunner runner(*model, *be, a.arena().layout_ptr(), 8, 2);
  const std::vector<int32_t> five(5, 3), none;
  const StepInput too_many_rows[] = {{&a.arena(), five, 0}, {&b.arena(), five, 0}};
  EXPECT_THROW(runner.run(too_many_rows), Error);
  const StepInput empty[] = {{&a.arena(), none, 0}};
  EXPECT_THROW(runner.run(empty), Error);
  const StepInput past_the_context[] = {{&a.arena(), five, 14}};
  EXPECT_THROW(runner.run(past_the_context), Error);
  const std::vector<int32_t> one(1, 3);
  const StepInput one_slot_twice[] = {{&a.arena(), one, 0}, {&a.arena(), one, 1}};
  EXPECT_THROW(runner.run(one_slot_twice), Error);
  SessionOptions other = o;
  other.kv_dtype = DType::F16;
  Session c(*model, *be, other);
  const StepInput other_layout[] = {{&c.arena(), five, 0}};
  EXPECT_THROW(runner.run(other_layout), Error);
  a.sync_from_arena();
  EXPECT_EQ(a.pos(), 0);  // nothing ran
}

}  // namespace
}  // namespace flashrt::testing

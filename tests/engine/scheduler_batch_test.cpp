// Continuous batching in the scheduler: runs submitted at once, and runs joining and leaving while
// others decode, advance together in shared forward steps, and every run's tokens are the ones a
// lone Session gives for the same prompt, parameters and seed (greedy and sampled), on the dense
// and the hybrid model.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <future>

#include "engine/scheduler.h"
#include "models/model_fixtures.h"
#include "tokenizer/gguf_vocab.h"

namespace flashrt::testing {
namespace {

struct RunCase {
  std::vector<int32_t> prompt;
  int max_tokens;
  SamplerParams params;
  uint64_t seed;
};

std::vector<int32_t> solo(const Model& m, Backend& be, const SessionOptions& o, const RunCase& r) {
  Session s(m, be, o);
  s.seed(r.seed);
  s.append(r.prompt);
  return s.generate(r.max_tokens, r.params, {}).tokens;
}

SamplerParams sampled(float temperature) {
  SamplerParams p;
  p.temperature = temperature;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  return p;
}

RunSpec spec_of(const RunCase& r) {
  RunSpec sp;
  sp.prefill = r.prompt;
  sp.max_tokens = r.max_tokens;
  sp.params = r.params;
  sp.seed = r.seed;
  return sp;
}

// The trained model named by the parameter, on a CPU backend.
class SchedulerBatch : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    dir = trained_model_dir(GetParam());
    be = make_cpu_backend();
    model = load_model(dir, *be);
  }
  std::string dir;
  std::unique_ptr<Backend> be;
  std::unique_ptr<Model> model;
};

TEST_P(SchedulerBatch, RunsSharingStepsGetTheirSoloTokens) {
  const Reference ref(dir);
  SchedulerOptions opt;
  opt.slots = 4;
  opt.session.max_ctx = 256;
  opt.prefill_chunk = 16;  // prompts take several steps, alongside the others' decoding
  opt.cache_bytes = 0;

  std::vector<RunCase> runs = {
      {ref.ids("p0.input_ids"), 40, SamplerParams::greedy(), 1},
      {ref.ids("p1.input_ids"), 12, sampled(0.9f), 7},
      {ref.ids("p2.input_ids"), 30, sampled(1.2f), 8},
      {std::vector<int32_t>(50, 3), 25, SamplerParams::greedy(), 2},
  };
  // Joining later, while the first ones decode: a long prompt and two short runs.
  std::vector<int32_t> long_prompt;
  for (int i = 0; i < 3; ++i) {
    const auto p = ref.ids("p2.input_ids");
    long_prompt.insert(long_prompt.end(), p.begin(), p.end());
  }
  runs.push_back({long_prompt, 20, sampled(0.8f), 9});
  runs.push_back({ref.ids("p1.input_ids"), 5, SamplerParams::greedy(), 3});
  runs.push_back({ref.ids("p0.input_ids"), 18, sampled(1.0f), 11});

  // Alone first: the backend (and the thread pool) belong to the scheduler's thread once it runs.
  std::vector<std::vector<int32_t>> alone;
  for (const RunCase& r : runs) alone.push_back(solo(*model, *be, opt.session, r));
  Scheduler sched(*model, *be, load_tokenizer(dir), opt);
  std::vector<std::shared_ptr<TokenStream>> streams;
  for (size_t i = 0; i < 4; ++i) streams.push_back(sched.submit(spec_of(runs[i])));
  // Wait until the first run has tokens, then add the rest one by one.
  std::vector<StreamChunk> ignored;
  while (streams[0]->generated.load() < 3)
    if (streams[0]->wait(&ignored, std::chrono::milliseconds(5))) break;  // over (or failed)
  for (size_t i = 4; i < runs.size(); ++i) {
    streams.push_back(sched.submit(spec_of(runs[i])));
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }

  for (size_t i = 0; i < runs.size(); ++i)
    EXPECT_EQ(streams[i]->result().ids, alone[i]) << "run " << i;
  // They did share steps: fewer steps than tokens fed, several sequences per step.
  const SchedulerStats& st = sched.stats();
  EXPECT_GT(st.step_sequences.load(), st.steps.load() * 3 / 2)
      << st.step_sequences.load() << " sequences in " << st.steps.load() << " steps";
}

TEST_P(SchedulerBatch, ChunkedGdnCutsAtCachePointsAndStaysBatchInvariant) {
  // The chunked Gated DeltaNet's bits depend on where chunks start, so the scheduler cuts prompts
  // only at the prompt's end, at cache points and at absolute multiples of 64. Cache points off
  // that grid and a budget below 64 once stalled a prompt forever; now every run finishes, with
  // the same tokens alone as next to others.
  const Reference ref(dir);
  SchedulerOptions opt;
  opt.slots = 3;
  opt.session.max_ctx = 512;
  opt.session.gdn_mode = GdnMode::kChunked;
  opt.prefill_chunk = 48;
  std::vector<RunSpec> runs;
  for (const char* key : {"p0.input_ids", "p1.input_ids", "p2.input_ids"}) {
    std::vector<int32_t> prompt;
    for (int i = 0; i < 4; ++i) {
      const auto p = ref.ids(key);
      prompt.insert(prompt.end(), p.begin(), p.end());
    }
    RunSpec sp = spec_of({prompt, 12, sampled(0.9f), 5});
    sp.use_cache = true;
    sp.cache_points = {37, 101};
    runs.push_back(sp);
  }
  auto finish = [](TokenStream& st) {
    EXPECT_TRUE(st.wait_done(std::chrono::seconds(60))) << "a run stalled";
    return st.result().ids;
  };
  std::vector<std::vector<int32_t>> alone;
  {
    Scheduler sched(*model, *be, load_tokenizer(dir), opt);
    for (const RunSpec& r : runs) alone.push_back(finish(*sched.submit(r)));
  }
  Scheduler sched(*model, *be, load_tokenizer(dir), opt);
  std::vector<std::shared_ptr<TokenStream>> streams;
  for (const RunSpec& r : runs) streams.push_back(sched.submit(r));
  for (size_t i = 0; i < runs.size(); ++i) EXPECT_EQ(finish(*streams[i]), alone[i]) << "run " << i;
  // Boundaries were cached at cache points too, not only at the prompts' ends (prompts that
  // share a prefix share its entries).
  EXPECT_GT(sched.stats().cache_inserts.load(), runs.size());
}

TEST_P(SchedulerBatch, NChoicesForkThePromptOnceAndDecodeTogether) {
  // OpenAI's n: the prompt is fed once, then choice i continues from that state with seed + i, so
  // each choice is the solo run of the same prompt with that seed.
  const Reference ref(dir);
  SchedulerOptions opt;
  opt.slots = 4;
  opt.session.max_ctx = 256;
  opt.cache_bytes = 0;
  const std::vector<int32_t> prompt = ref.ids("p0.input_ids");
  constexpr int kN = 5;  // one more than the slots: the last waits for one
  std::vector<std::vector<int32_t>> alone;
  for (int i = 0; i < kN; ++i)
    alone.push_back(solo(*model, *be, opt.session, {prompt, 24, sampled(1.0f), 40u + i}));
  Scheduler sched(*model, *be, load_tokenizer(dir), opt);
  RunSpec sp = spec_of({prompt, 24, sampled(1.0f), 40});
  const auto streams = sched.submit(sp, kN);
  ASSERT_EQ(streams.size(), static_cast<size_t>(kN));
  for (int i = 0; i < kN; ++i) {
    const RunResult r = streams[i]->result();
    EXPECT_EQ(r.ids, alone[i]) << "choice " << i;
    EXPECT_EQ(r.prompt_tokens, static_cast<int64_t>(prompt.size()));
    EXPECT_EQ(r.prefilled_tokens, i == 0 ? static_cast<int64_t>(prompt.size()) : 0);
  }
  const SchedulerStats& st = sched.stats();
  EXPECT_EQ(st.prefill_tokens.load(), prompt.size()) << "the prompt is fed once";
  EXPECT_GT(st.step_sequences.load(), st.steps.load() * 2) << "the choices share steps";
  // Greedy choices are all the greedy continuation.
  const auto greedy = sched.submit(spec_of({prompt, 10, SamplerParams::greedy(), 1}), 3);
  const auto first = greedy[0]->result().ids;
  EXPECT_EQ(greedy[1]->result().ids, first);
  EXPECT_EQ(greedy[2]->result().ids, first);
}

TEST_P(SchedulerBatch, LogprobsAreTheLogSoftmaxOfTheForwardLogits) {
  // A run's logprobs are those of `flashrt logits` (one forward over prompt + tokens) at the
  // positions that produced each token, whatever the sampler then did with them.
  const Reference ref(dir);
  SchedulerOptions opt;
  opt.slots = 2;
  opt.session.max_ctx = 256;
  opt.cache_bytes = 0;
  const std::vector<int32_t> prompt = ref.ids("p1.input_ids");
  constexpr int kTop = 4;
  std::vector<RunResult> results;
  {
    Scheduler sched(*model, *be, load_tokenizer(dir), opt);
    for (const SamplerParams& p : {SamplerParams::greedy(), sampled(1.3f)}) {
      RunSpec sp = spec_of({prompt, 16, p, 9});
      sp.logprobs = kTop;
      results.push_back(sched.submit(sp)->result());
    }
  }
  const int64_t V = model->cfg.vocab;
  for (const RunResult& r : results) {
    ASSERT_EQ(r.logprobs.size(), r.ids.size());
    std::vector<int32_t> all = prompt;
    all.insert(all.end(), r.ids.begin(), r.ids.end() - 1);
    Session s(*model, *be, opt.session);
    const std::vector<float> logits = s.forward_all_logits(all);
    for (size_t t = 0; t < r.ids.size(); ++t) {
      const float* row = logits.data() + (prompt.size() - 1 + t) * static_cast<size_t>(V);
      double mx = row[0], sum = 0;
      for (int64_t v = 0; v < V; ++v) mx = std::max<double>(mx, row[v]);
      for (int64_t v = 0; v < V; ++v) sum += std::exp(row[v] - mx);
      const double lse = mx + std::log(sum);
      const TokenLogprob& lp = r.logprobs[t];
      EXPECT_EQ(lp.id, r.ids[t]);
      EXPECT_NEAR(lp.logprob, row[lp.id] - lse, 2e-3) << "token " << t;
      EXPECT_LE(lp.logprob, 0.0f);
      ASSERT_EQ(lp.top.size(), static_cast<size_t>(kTop));
      for (size_t k = 0; k < lp.top.size(); ++k) {
        EXPECT_NEAR(lp.top[k].second, row[lp.top[k].first] - lse, 2e-3);
        if (k > 0) {
          EXPECT_GE(lp.top[k - 1].second, lp.top[k].second);
        }
      }
      // The most likely alternative is the forward's argmax (greedy: the token itself).
      EXPECT_EQ(lp.top[0].first, std::max_element(row, row + V) - row);
    }
  }
  EXPECT_EQ(results[0].logprobs[0].id, results[0].logprobs[0].top[0].first);
}

TEST(SchedulerPreemption, MoreRunsThanSlotsSuspendEachRunAtMostOnce) {
  // Three 120-token runs on two slots with a short time slice: without the rule a waiting run
  // would preempt every 16 steps (a dozen suspend/resume copies); with it, at most one per run
  // (a run preempted once is spared for 8 x 16 = 128 steps, more than it generates).
  const std::string dir = trained_model_dir("pycoder-dense-7m");
  const auto be = make_cpu_backend();
  const auto model = load_model(dir, *be);
  SchedulerOptions opt;
  opt.slots = 2;
  opt.preempt_after = 16;
  opt.session.max_ctx = 256;
  opt.cache_bytes = 0;
  const std::vector<RunCase> runs = {{{3, 4, 5}, 120, SamplerParams::greedy(), 1},
                                     {{6, 7}, 120, sampled(0.9f), 2},
                                     {{8}, 120, sampled(1.1f), 3}};
  std::vector<std::vector<int32_t>> alone;
  for (const RunCase& r : runs) alone.push_back(solo(*model, *be, opt.session, r));
  Scheduler sched(*model, *be, load_tokenizer(dir), opt);
  std::vector<std::shared_ptr<TokenStream>> streams;
  for (const RunCase& r : runs) streams.push_back(sched.submit(spec_of(r)));
  for (size_t i = 0; i < runs.size(); ++i)
    EXPECT_EQ(streams[i]->result().ids, alone[i]) << "run " << i;
  EXPECT_GE(sched.stats().preemptions.load(), 1u);
  EXPECT_LE(sched.stats().preemptions.load(), runs.size());
}

INSTANTIATE_TEST_SUITE_P(Models, SchedulerBatch,
                         ::testing::Values("pycoder-hybrid-12m", "pycoder-dense-7m"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n)
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           return n;
                         });

}  // namespace
}  // namespace flashrt::testing

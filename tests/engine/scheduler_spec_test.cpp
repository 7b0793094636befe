// Speculative runs in the scheduler (RunSpec::speculative): each sequence's verify rows join the
// round's step with the other sequences' rows, and every run's tokens are the ones it gets alone:
// greedy speculative runs give plain greedy's, seeded speculative sampling repeats, a stop string
// inside a step's accepted drafts leaves the session exactly where a plain run leaves it, and a
// run suspended and resumed between verify steps goes on exactly.
#include <gtest/gtest.h>

#include "engine/scheduler.h"
#include "models/model_fixtures.h"
#include "tokenizer/gguf_vocab.h"

namespace flashrt::testing {
namespace {

const std::string kModel = "pycoder-hybrid-12m-mtp";

RunSpec run(std::vector<int32_t> prompt, int max_tokens, const std::string& spec,
            SamplerParams p = SamplerParams::greedy(), uint64_t seed = 1) {
  RunSpec sp;
  sp.prefill = std::move(prompt);
  sp.max_tokens = max_tokens;
  sp.params = p;
  sp.seed = seed;
  sp.speculative = spec;
  sp.draft_max = 6;
  return sp;
}

SamplerParams sampled() {
  SamplerParams p;
  p.temperature = 0.9f;
  p.top_k = 40;
  return p;
}

class SchedulerSpeculative : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = trained_model_dir(kModel);
    be = make_cpu_backend();
    model = load_model(dir, *be);
    opt.slots = 3;
    opt.session.max_ctx = 512;
    opt.session.mtp = true;  // the head runs in every slot: "mtp" runs may draft with it
    opt.prefill_chunk = 16;
    opt.cache_bytes = 0;
    const Reference ref(dir, "reference_mtp.safetensors");
    for (const char* k : {"p0.input_ids", "p1.input_ids", "p2.input_ids"})
      prompts.push_back(ref.ids(k));
  }
  std::vector<int32_t> solo(const RunSpec& r) {
    Session s(*model, *be, opt.session);
    s.seed(*r.seed);
    s.append(r.prefill);
    return s.generate(static_cast<int>(r.max_tokens), r.params, {}).tokens;
  }
  std::string dir;
  std::unique_ptr<Backend> be;
  std::unique_ptr<Model> model;
  SchedulerOptions opt;
  std::vector<std::vector<int32_t>> prompts;
};

TEST_F(SchedulerSpeculative, VerifyRowsShareStepsAndGreedyRunsGetPlainTokens) {
  std::vector<RunSpec> runs = {
      run(prompts[0], 48, "ngram"), run(prompts[1], 48, "mtp"),
      run(prompts[2], 40, ""),  // plain, beside them
      run(prompts[2], 40, "mtp"),   run(prompts[0], 30, "mtp", sampled(), 5),
  };
  std::vector<std::vector<int32_t>> alone;
  for (size_t i = 0; i + 1 < runs.size(); ++i) alone.push_back(solo(runs[i]));
  std::vector<std::vector<int32_t>> sampled_ids;
  for (int rep = 0; rep < 2; ++rep) {
    Scheduler sched(*model, *be, load_tokenizer(dir), opt);
    std::vector<std::shared_ptr<TokenStream>> streams;
    for (const RunSpec& r : runs) streams.push_back(sched.submit(r));
    for (size_t i = 0; i + 1 < runs.size(); ++i) {
      const RunResult res = streams[i]->result();
      EXPECT_EQ(res.ids, alone[i]) << "run " << i;
      if (!runs[i].speculative.empty()) {
        EXPECT_GT(res.spec_drafted, 0) << "run " << i;
      }
    }
    const RunResult s = streams.back()->result();
    EXPECT_EQ(s.ids.size(), 30u);
    sampled_ids.push_back(s.ids);
    const SchedulerStats& st = sched.stats();
    EXPECT_GT(st.step_sequences.load(), st.steps.load()) << "the runs did not share steps";
  }
  // Seeded speculative sampling repeats whatever shared its steps.
  EXPECT_EQ(sampled_ids[0], sampled_ids[1]);
}

// A stop string that ends inside a step's accepted drafts: the text, the ids and the session's
// whole state (a snapshot) are the plain run's.
TEST_F(SchedulerSpeculative, AStopInsideAcceptedDraftsEndsWhereAPlainRunEnds) {
  const Tokenizer tok = load_tokenizer(dir);
  Scheduler sched(*model, *be, load_tokenizer(dir), opt);
  const std::string plain_id = sched.create_session();
  RunSpec r = run(prompts[0], 60, "");
  const RunResult plain_full = sched.run_session(plain_id, r)->result();
  ASSERT_EQ(plain_full.ids.size(), 60u);
  // Stop at the text of token 20 onwards: well inside the run.
  const std::string text = plain_full.text;
  const std::string tail = tok.decode({plain_full.ids.begin() + 20, plain_full.ids.begin() + 22});
  ASSERT_FALSE(tail.empty());
  ASSERT_NE(text.find(tail), std::string::npos);
  r.stop_strings = {tail};
  for (const std::string spec : {"", "ngram", "mtp"}) {
    SCOPED_TRACE("speculative '" + spec + "'");
    const std::string id = sched.create_session();
    RunSpec rs = r;
    rs.speculative = spec;
    const RunResult got = sched.run_session(id, rs)->result();
    const std::string ref_id = sched.create_session();
    const RunResult want = sched.run_session(ref_id, r)->result();
    EXPECT_EQ(got.finish_reason, "stop");
    EXPECT_EQ(got.text, want.text);
    EXPECT_EQ(got.ids, want.ids);
    EXPECT_EQ(got.session_tokens, want.session_tokens);
    const Capsule a = sched.snapshot(id), b = sched.snapshot(ref_id);
    ASSERT_EQ(a.payload_bytes(), b.payload_bytes());
    EXPECT_EQ(std::memcmp(a.data.get(), b.data.get(), a.payload_bytes()), 0);
  }
}

// More runs than slots with preemption every few steps: speculative runs are suspended between
// verify steps and resumed (in another slot, with a new decoder) and still give plain tokens.
TEST_F(SchedulerSpeculative, SuspendedAndResumedRunsGoOnExactly) {
  opt.slots = 2;
  opt.preempt_after = 3;
  std::vector<RunSpec> runs;
  for (int i = 0; i < 5; ++i)
    runs.push_back(run(prompts[static_cast<size_t>(i % 3)], 36, i % 2 ? "mtp" : "ngram"));
  std::vector<std::vector<int32_t>> alone;
  for (const RunSpec& r : runs) alone.push_back(solo(r));
  Scheduler sched(*model, *be, load_tokenizer(dir), opt);
  std::vector<std::shared_ptr<TokenStream>> streams;
  for (const RunSpec& r : runs) streams.push_back(sched.submit(r));
  for (size_t i = 0; i < runs.size(); ++i)
    EXPECT_EQ(streams[i]->result().ids, alone[i]) << "run " << i;
  EXPECT_GT(sched.stats().preemptions.load(), 0);
}

}  // namespace
}  // namespace flashrt::testing

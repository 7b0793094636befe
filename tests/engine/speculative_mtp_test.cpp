// Speculative decoding with the target's own MTP head (MtpDrafter): greedy output is plain
// greedy's for every k, across the 64-token chunk grid, and the slot (the head's state included)
// holds plain decoding's live bytes after every generation; a capsule taken between speculative
// generations restores and continues the same; seeded sampling repeats, and the speculated token
// is distributed as the target's sampler says (chi-square).
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "capsule/capsule_fixture.h"
#include "chi_square.h"
#include "core/thread_pool.h"
#include "engine/speculative.h"
#include "models/random_model.h"

namespace flashrt::testing {
namespace {

SessionOptions mtp_options() {
  SessionOptions o;
  o.max_ctx = 512;
  o.mtp = true;
  return o;
}

struct Target {
  std::string name;
  std::unique_ptr<Model> model;
  std::vector<int32_t> prompt;
};

// The trained head (acceptance near its measured 45%), and a random tiny model with a random head
// (nearly every draft rejected).
std::vector<Target> targets() {
  std::vector<Target> t;
  t.push_back({"trained", load_model(trained_model_dir("pycoder-hybrid-12m-mtp")),
               CapsuleModel{"pycoder-hybrid-12m", true}.prompt()});
  ModelConfig c = model_shape("qwen3_5", "tiny");
  c.mtp_layers = 1;
  t.push_back({"random", make_random_model(c, 11), {5, 99, 3, 250, 17, 17, 42, 8, 300}});
  return t;
}

class SpeculativeMtp : public ::testing::Test {
 protected:
  void SetUp() override { ThreadPool::set_default_threads(1); }
  std::unique_ptr<Backend> be_ = make_cpu_backend();
};

TEST_F(SpeculativeMtp, GreedyIsPlainGreedyForEveryK) {
  const std::vector<int> pieces = {7, 1, 12, 20, 30};
  for (const Target& t : targets()) {
    SCOPED_TRACE(t.name);
    // Plain decoding, with the head running along (its state is part of the slot compared).
    Session plain(*t.model, *be_, mtp_options());
    plain.append(t.prompt);
    std::vector<std::vector<uint8_t>> states;
    std::vector<int32_t> full = t.prompt;
    for (int n : pieces) {
      const auto r = plain.generate(n, SamplerParams::greedy(), {});
      full.insert(full.end(), r.tokens.begin(), r.tokens.end());
      states.push_back(live_state(plain));
    }
    ASSERT_NE(t.prompt.size() / 64, full.size() / 64);  // crosses the chunked GDN's grid
    int64_t accepted = 0, drafted = 0;
    for (int k = 1; k <= 8; ++k) {
      SCOPED_TRACE("k=" + std::to_string(k));
      Session s(*t.model, *be_, mtp_options());
      s.append(t.prompt);
      MtpDrafter drafter(s);
      SpeculativeDecoder dec(s, drafter, {.draft_max = k, .adaptive = false});
      std::vector<int32_t> got = t.prompt;
      for (size_t piece = 0; piece < pieces.size(); ++piece) {
        const auto r = dec.generate(pieces[piece], SamplerParams::greedy(), {});
        got.insert(got.end(), r.tokens.begin(), r.tokens.end());
        ASSERT_EQ(got, std::vector<int32_t>(full.begin(), full.begin() + got.size()))
            << "piece " << piece;
        ASSERT_EQ(live_state(s), states[piece]) << "slot after piece " << piece;
      }
      accepted += dec.stats().accepted;
      drafted += dec.stats().drafted;
    }
    if (t.name == "trained") {  // the head drafts for real: accepted and rejected both (how
      // often depends on the text: ~18% of first drafts on this prompt, ~45% on held-out code)
      EXPECT_GT(accepted, 0);
      EXPECT_LT(accepted, drafted);
    }
  }
}

TEST_F(SpeculativeMtp, ACapsuleBetweenGenerationsRestoresAndContinues) {
  for (const Target& t : targets()) {
    SCOPED_TRACE(t.name);
    Session s(*t.model, *be_, mtp_options());
    s.append(t.prompt);
    MtpDrafter drafter(s);
    SpeculativeDecoder dec(s, drafter, {.draft_max = 4});
    dec.generate(13, SamplerParams::greedy(), {});
    const Capsule cap = s.snapshot();
    const auto after = dec.generate(30, SamplerParams::greedy(), {});

    Session b(*t.model, *be_, mtp_options());
    b.restore(cap);
    MtpDrafter fresh(b);
    SpeculativeDecoder dec2(b, fresh, {.draft_max = 2});
    EXPECT_EQ(dec2.generate(30, SamplerParams::greedy(), {}).tokens, after.tokens);
    Session c(*t.model, *be_, mtp_options());
    c.restore(cap);
    EXPECT_EQ(c.generate(30, SamplerParams::greedy(), {}).tokens, after.tokens);
    EXPECT_EQ(live_state(b), live_state(c));
    EXPECT_EQ(live_state(b), live_state(s));
  }
}

TEST_F(SpeculativeMtp, SeededSamplingRepeats) {
  const auto model = load_model(trained_model_dir("pycoder-hybrid-12m-mtp"));
  const auto prompt = CapsuleModel{"pycoder-hybrid-12m", true}.prompt();
  auto run = [&] {
    Session s(*model, *be_, mtp_options());
    s.append(prompt);
    s.seed(42);
    MtpDrafter drafter(s, 42);
    SpeculativeDecoder dec(s, drafter, {.draft_max = 3});
    return dec.generate(30, sampled(), {}).tokens;
  };
  const auto a = run();
  EXPECT_EQ(a.size(), 30u);
  EXPECT_EQ(a, run());
}

// With temperature > 0 the first speculated token is distributed as the target's sampler says
// when the head's drafts (drawn from its own distribution) are accepted with min(1, p/q): 2000
// seeds, tokens with an expected count of 5 or more as bins, the rest pooled.
TEST_F(SpeculativeMtp, TheSpeculatedTokenHasTheTargetsDistribution) {
  const auto model = load_model(trained_model_dir("pycoder-hybrid-12m-mtp"));
  const auto prompt = CapsuleModel{"pycoder-hybrid-12m", true}.prompt();
  SamplerParams p = sampled();
  p.top_k = 50;
  Session base(*model, *be_, mtp_options());
  base.append(std::span<const int32_t>(prompt.data(), prompt.size() - 1));
  base.set_pending(prompt.back(), base.rng_state());
  const Capsule cap = base.snapshot();
  Session ref(*model, *be_, mtp_options());
  ref.append(prompt);
  const TokenDistribution want = sampling_distribution(ref.logits(), {}, p);

  Session s(*model, *be_, mtp_options());
  MtpDrafter drafter(s, 7);  // its own RNG runs on
  expect_target_distribution(s, cap, drafter, p, want, "mtp");
}

}  // namespace
}  // namespace flashrt::testing

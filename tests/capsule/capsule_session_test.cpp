// The capsule invariants, for every architecture, on random and trained weights: byte-exact
// restore, token-identical greedy and seeded sampled decoding after other work, a KV-only restore
// that diverges on hybrids, independent forks, rollback, and all three tiers.
#include <filesystem>

#include "capsule/capsule_file.h"
#include "capsule_fixture.h"

namespace flashrt::testing {
namespace {

class CapsuleSession : public ::testing::TestWithParam<CapsuleModel> {
 protected:
  void SetUp() override {
    model_ = load_model(GetParam().dir());
    be_ = make_cpu_backend();
    opt_.max_ctx = 256;
    opt_.kv_dtype = GetParam().kv;
  }
  std::unique_ptr<Session> fresh() const { return std::make_unique<Session>(*model_, *be_, opt_); }
  // Prompt, then n tokens with params/seed, uninterrupted.
  std::vector<int32_t> uninterrupted(const SamplerParams& p, uint64_t seed, int n) const {
    auto s = fresh();
    s->seed(seed);
    s->append(GetParam().prompt());
    return s->generate(n, p, {}).tokens;
  }
  // Other work on the same backend and model in between: decoding in the session itself, and a
  // second session prefilling and decoding.
  void other_work(Session& s) const {
    s.generate(9, sampled(), {});
    auto o = fresh();
    o->seed(99);
    o->append(std::vector<int32_t>{3, 1, 4, 1, 5, 9, 2, 6});
    o->generate(5, sampled(), {});
  }
  std::unique_ptr<Model> model_;
  std::unique_ptr<Backend> be_;
  SessionOptions opt_;
};

TEST_P(CapsuleSession, RestoreIsByteExactInEveryTier) {
  const std::string file = temp_dir() + "/byte-exact-" + GetParam().name + ".cap";
  for (Tier tier : {Tier::kDevice, Tier::kHost, Tier::kDisk}) {
    SCOPED_TRACE(tier_name(tier));
    auto s = fresh();
    s->append(GetParam().prompt());
    s->generate(3, SamplerParams::greedy(), {});  // a pending token and advanced state
    const auto before = live_state(*s);
    const int64_t pos = s->pos();
    const Capsule c = s->snapshot(tier, file);
    EXPECT_EQ(c.tier, tier);
    other_work(*s);
    ASSERT_NE(live_state(*s), before);
    s->restore(c);
    EXPECT_EQ(s->pos(), pos);
    EXPECT_EQ(live_state(*s), before);
  }
}

TEST_P(CapsuleSession, GreedyAndSampledDecodeContinueIdentically) {
  for (bool greedy : {true, false}) {
    SCOPED_TRACE(greedy ? "greedy" : "sampled");
    const SamplerParams p = greedy ? SamplerParams::greedy() : sampled();
    const auto want = uninterrupted(p, 1234, 24);
    for (Tier tier : {Tier::kHost, Tier::kDisk}) {
      auto s = fresh();
      s->seed(1234);
      s->append(GetParam().prompt());
      const Capsule c = s->snapshot(tier, temp_dir() + "/continue-" + GetParam().name + ".cap");
      other_work(*s);
      s->restore(c);
      EXPECT_EQ(s->generate(24, p, {}).tokens, want) << tier_name(tier);
      // The same capsule restored into a brand-new session.
      auto t = fresh();
      t->restore(c);
      EXPECT_EQ(t->generate(24, p, {}).tokens, want) << tier_name(tier) << " (fresh session)";
    }
  }
}

TEST_P(CapsuleSession, KvOnlyRestoreDivergesOnHybrids) {
  const auto want = uninterrupted(SamplerParams::greedy(), 0, 24);
  auto s = fresh();
  s->append(GetParam().prompt());
  const Capsule c = s->snapshot(Tier::kHost);
  s->generate(17, SamplerParams::greedy(), {});  // moves KV rows, recurrent and conv state on
  // What a paged KV cache restores: attention KV plus the bookkeeping, not the recurrent state.
  s->restore_regions(c, [](const std::string& name) { return name.rfind("gdn.", 0) != 0; });
  const auto kv_only = s->generate(24, SamplerParams::greedy(), {}).tokens;
  if (GetParam().hybrid()) {
    EXPECT_NE(kv_only, want) << "the Gated DeltaNet state must be load-bearing";
  } else {
    EXPECT_EQ(kv_only, want) << "a dense model's state is its KV";
  }
  s->restore(c);
  EXPECT_EQ(s->generate(24, SamplerParams::greedy(), {}).tokens, want);
}

TEST_P(CapsuleSession, ForkAndParentContinueIndependently) {
  const auto want = uninterrupted(SamplerParams::greedy(), 0, 20);
  auto parent = fresh();
  parent->append(GetParam().prompt());
  auto child = parent->fork();
  EXPECT_EQ(live_state(*child), live_state(*parent));
  child->seed(77);
  const auto child_tokens = child->generate(20, sampled(), {}).tokens;  // child first, sampled
  EXPECT_EQ(parent->generate(20, SamplerParams::greedy(), {}).tokens, want);  // parent untouched
  auto check = fresh();
  check->append(GetParam().prompt());
  check->seed(77);
  EXPECT_EQ(check->generate(20, sampled(), {}).tokens, child_tokens);  // child untouched by parent
}

TEST_P(CapsuleSession, RollbackAfterExtraTokensReproducesTheRun) {
  auto s = fresh();
  s->seed(5);
  s->append(GetParam().prompt());
  const Capsule c = s->snapshot(Tier::kHost);
  const auto first = s->generate(16, sampled(), {}).tokens;
  for (int k : {1, 4, 16}) {
    s->rollback(c);
    s->generate(k, sampled(), {});  // k extra tokens, then back again
    s->rollback(c);
    EXPECT_EQ(s->generate(16, sampled(), {}).tokens, first) << "k=" << k;
  }
}

TEST_P(CapsuleSession, CapsulesMoveBetweenContextSizes) {
  auto s = fresh();
  s->append(GetParam().prompt());
  const Capsule c = s->snapshot(Tier::kHost);
  SessionOptions big = opt_;
  big.max_ctx = 512;
  Session t(*model_, *be_, big);
  t.restore(c);
  EXPECT_EQ(t.generate(8, SamplerParams::greedy(), {}).tokens,
            s->generate(8, SamplerParams::greedy(), {}).tokens);
  SessionOptions tiny = opt_;
  tiny.max_ctx = static_cast<int64_t>(GetParam().prompt().size()) - 1;
  Session u(*model_, *be_, tiny);
  EXPECT_THROW(u.restore(c), Error);
}

// The KV cache type is part of the layout: a capsule of an f32 cache does not restore into an f16
// one (or back), and the session is unchanged.
TEST_P(CapsuleSession, OtherKvTypeIsRefused) {
  auto s = fresh();
  s->append(GetParam().prompt());
  const Capsule c = s->snapshot(Tier::kHost);
  SessionOptions other = opt_;
  other.kv_dtype = opt_.kv_dtype == DType::F32 ? DType::F16 : DType::F32;
  Session t(*model_, *be_, other);
  t.append(std::vector<int32_t>{1, 2, 3});
  const auto before = live_state(t);
  try {
    t.restore(c);
    FAIL() << "restored a capsule of another KV cache type";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("attn."), std::string::npos) << e.what();
  }
  EXPECT_EQ(t.pos(), 3);
  EXPECT_EQ(live_state(t), before);
}

INSTANTIATE_TEST_SUITE_P(Models, CapsuleSession, ::testing::ValuesIn(capsule_models()), param_name);

}  // namespace
}  // namespace flashrt::testing

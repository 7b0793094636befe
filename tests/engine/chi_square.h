// The chi-square goodness-of-fit test the speculative sampling tests use: observed token counts
// against a sampler's distribution, and the experiment they all run.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>

#include "capsule/capsule.h"
#include "engine/sampler.h"
#include "engine/speculative.h"

namespace flashrt::testing {

// The chi-square statistic's upper quantile (Wilson-Hilferty): z = 3.09 is p = 0.001.
inline double chi_square_limit(int df) {
  const double z = 3.09, h = 2.0 / (9.0 * df);
  return df * std::pow(1 - h + z * std::sqrt(h), 3);
}

// The statistic of `counts` (n draws) against `want`: tokens with an expected count of 5 or more
// as bins, the rest pooled into one (when it expects 5 or more). `bins` receives their number.
inline double chi_square(const std::map<int32_t, int>& counts, const TokenDistribution& want, int n,
                         int* bins) {
  double chi2 = 0, pooled_expected = 0, pooled_seen = n;
  *bins = 0;
  for (size_t i = 0; i < want.ids.size(); ++i) {
    const double e = n * want.weights[i] / want.total;
    if (e < 5) continue;
    const auto it = counts.find(want.ids[i]);
    const double o = it == counts.end() ? 0 : it->second;
    chi2 += (o - e) * (o - e) / e;
    pooled_expected += e;
    pooled_seen -= o;
    ++*bins;
  }
  pooled_expected = n - pooled_expected;
  if (pooled_expected >= 5) {
    chi2 += (pooled_seen - pooled_expected) * (pooled_seen - pooled_expected) / pooled_expected;
    ++*bins;
  }
  return chi2;
}

// The speculated token's distribution: `s` restored to `cap` (a boundary with the prompt's last
// token pending) under 2000 seeds, one verify step of two drafts from `d` making the first token;
// its counts must pass the chi-square test against `want` (the target's distribution there), and
// both acceptance and rejection must have made first tokens.
inline void expect_target_distribution(Session& s, const Capsule& cap, Drafter& d,
                                       const SamplerParams& p, const TokenDistribution& want,
                                       const char* label) {
  const int kSeeds = 2000;
  std::map<int32_t, int> counts;
  int64_t drafted = 0, accepted = 0;
  for (int seed = 0; seed < kSeeds; ++seed) {
    s.restore(cap);
    s.seed(static_cast<uint64_t>(seed));
    SpeculativeDecoder dec(s, d, {.draft_max = 2, .adaptive = false});
    const auto r = dec.generate(3, p, {});
    ASSERT_EQ(r.tokens.size(), 3u);
    ++counts[r.tokens[0]];
    drafted += dec.stats().drafted;
    accepted += dec.stats().accepted;
  }
  EXPECT_GT(accepted, kSeeds / 10);
  EXPECT_LT(accepted, drafted - kSeeds / 10);
  int bins = 0;
  const double chi2 = chi_square(counts, want, kSeeds, &bins);
  ASSERT_GE(bins, 3) << "too few likely tokens to test";
  EXPECT_LT(chi2, chi_square_limit(bins - 1)) << bins << " bins";
  std::printf("%s: chi-square %.1f over %d bins (limit %.1f at p = 0.001)\n", label, chi2, bins,
              chi_square_limit(bins - 1));
}

}  // namespace flashrt::testing

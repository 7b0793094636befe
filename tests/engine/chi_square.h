// The chi-square goodness-of-fit test the speculative sampling tests use: observed token counts
// against a sampler's distribution.
#pragma once
#include <cmath>
#include <cstdint>
#include <map>

#include "engine/sampler.h"

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

}  // namespace flashrt::testing

#include "engine/perplexity.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace flashrt {

PerplexityResult perplexity(const Model& m, Backend& be, std::span<const int32_t> ids, int window,
                            const std::function<void(int, int)>& progress) {
  FLASHRT_CHECK(window >= 2, "the perplexity window must be at least 2 tokens (got {})", window);
  FLASHRT_CHECK(ids.size() >= 2, "need at least 2 tokens to measure perplexity (got {})",
                ids.size());
  SessionOptions so;
  so.max_ctx = window;
  so.max_batch = std::min(window, 512);
  Session s(m, be, so);
  const int64_t V = m.cfg.vocab;
  const int total = static_cast<int>((ids.size() + static_cast<size_t>(window) - 1) /
                                     static_cast<size_t>(window));
  PerplexityResult r;
  double nll = 0;
  for (size_t start = 0; start < ids.size(); start += static_cast<size_t>(window)) {
    const size_t n = std::min(ids.size() - start, static_cast<size_t>(window));
    if (n < 2) break;
    s.reset();
    const auto logits = s.forward_all_logits(ids.subspan(start, n));
    for (size_t t = 0; t + 1 < n; ++t) {
      const float* l = logits.data() + t * static_cast<size_t>(V);
      const float mx = *std::max_element(l, l + V);
      double z = 0;
      for (int64_t v = 0; v < V; ++v) z += std::exp(static_cast<double>(l[v]) - mx);
      nll += std::log(z) + mx - l[ids[start + t + 1]];
      ++r.tokens_scored;
    }
    ++r.windows;
    if (progress) progress(r.windows, total);
  }
  r.mean_nll = nll / static_cast<double>(r.tokens_scored);
  r.perplexity = std::exp(r.mean_nll);
  return r;
}

}  // namespace flashrt

#include "engine/sampler.h"

#include "core/error.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace flashrt {

namespace {
uint64_t rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}
uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
}  // namespace

RngState rng_from_seed(uint64_t seed) {
  RngState r;
  for (auto& s : r.s) s = splitmix64(seed);
  return r;
}

uint64_t rng_next(RngState& r) {
  uint64_t* s = r.s;
  const uint64_t result = rotl(s[1] * 5, 7) * 9;
  const uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

double rng_uniform(RngState& r) {
  return static_cast<double>(rng_next(r) >> 11) * 0x1.0p-53;
}

int32_t argmax(std::span<const float> logits) {
  int32_t best = 0;
  for (size_t i = 1; i < logits.size(); ++i)
    if (logits[i] > logits[static_cast<size_t>(best)]) best = static_cast<int32_t>(i);
  return best;
}

namespace {

// Logit bias and the repetition/presence/frequency penalties, on a copy of the logits.
std::vector<float> adjusted_logits(std::span<const float> logits_in,
                                   std::span<const int32_t> recent, const SamplerParams& p) {
  const size_t V = logits_in.size();
  std::vector<float> logits(logits_in.begin(), logits_in.end());
  for (const auto& [id, bias] : p.logit_bias)
    if (id >= 0 && static_cast<size_t>(id) < V) logits[static_cast<size_t>(id)] += bias;
  if (p.uses_recent()) {
    const size_t n = p.repeat_last_n < 0
                         ? recent.size()
                         : std::min(recent.size(), static_cast<size_t>(p.repeat_last_n));
    std::vector<int32_t> seen(recent.end() - static_cast<std::ptrdiff_t>(n), recent.end());
    std::sort(seen.begin(), seen.end());
    for (size_t i = 0; i < seen.size();) {
      const int32_t id = seen[i];
      size_t count = 1;
      while (i + count < seen.size() && seen[i + count] == id) ++count;
      i += count;
      if (id < 0 || static_cast<size_t>(id) >= V) continue;
      float& l = logits[static_cast<size_t>(id)];
      if (p.repeat_penalty != 1.0f) l = l > 0 ? l / p.repeat_penalty : l * p.repeat_penalty;
      l -= p.presence_penalty + p.frequency_penalty * static_cast<float>(count);
    }
  }
  return logits;
}

// Temperature, top-k, top-p and min-p over adjusted logits.
TokenDistribution distribution_of(const std::vector<float>& logits, const SamplerParams& p) {
  const size_t V = logits.size();
  // Candidates sorted by logit, widened until they cover what top-k / top-p can keep.
  std::vector<int32_t> idx(V);
  std::iota(idx.begin(), idx.end(), 0);
  auto by_logit = [&](int32_t a, int32_t b) {
    const float la = logits[static_cast<size_t>(a)], lb = logits[static_cast<size_t>(b)];
    return la > lb || (la == lb && a < b);
  };
  const float mx = *std::max_element(logits.begin(), logits.end());
  double z = 0;  // softmax normaliser at this temperature over all tokens
  for (float l : logits) z += std::exp((static_cast<double>(l) - mx) / p.temperature);
  size_t keep = p.top_k > 0 ? std::min(V, static_cast<size_t>(p.top_k)) : V;
  size_t sorted = std::min<size_t>(keep, 64);
  for (;;) {
    std::partial_sort(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(sorted), idx.end(),
                      by_logit);
    if (sorted >= keep) break;
    if (p.top_p < 1.0f) {
      double cum = 0;
      for (size_t i = 0; i < sorted; ++i)
        cum += std::exp((logits[static_cast<size_t>(idx[i])] - mx) / p.temperature) / z;
      if (cum >= p.top_p) break;
    }
    sorted = std::min(keep, sorted * 8);
  }
  keep = std::min(keep, sorted);
  std::vector<double> probs(keep);
  for (size_t i = 0; i < keep; ++i)
    probs[i] = std::exp((logits[static_cast<size_t>(idx[i])] - mx) / p.temperature);
  double total = std::accumulate(probs.begin(), probs.end(), 0.0);
  if (p.top_p < 1.0f) {  // smallest prefix whose mass (of the top-k distribution) reaches top_p
    double cum = 0;
    size_t n = 0;
    while (n < keep) {
      cum += probs[n++] / total;
      if (cum >= p.top_p) break;
    }
    keep = std::max<size_t>(1, n);
  }
  if (p.min_p > 0) {
    const double floor = p.min_p * probs[0];
    size_t n = 1;
    while (n < keep && probs[n] >= floor) ++n;
    keep = n;
  }
  TokenDistribution d;
  d.ids.assign(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(keep));
  probs.resize(keep);
  d.total = std::accumulate(probs.begin(), probs.end(), 0.0);
  d.weights = std::move(probs);
  return d;
}

}  // namespace

double TokenDistribution::prob(int32_t id) const {
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] == id) return weights[i] / total;
  return 0;
}

int32_t draw(const TokenDistribution& d, RngState& rng) {
  double u = rng_uniform(rng) * d.total;
  for (size_t i = 0; i < d.ids.size(); ++i) {
    u -= d.weights[i];
    if (u < 0) return d.ids[i];
  }
  return d.ids.back();
}

TokenDistribution sampling_distribution(std::span<const float> logits,
                                        std::span<const int32_t> recent, const SamplerParams& p) {
  FLASHRT_CHECK(!p.is_greedy(), "internal: a sampling distribution at temperature 0");
  return distribution_of(adjusted_logits(logits, recent, p), p);
}

int32_t sample_token(std::span<const float> logits_in, std::span<const int32_t> recent,
                     const SamplerParams& p, RngState& rng) {
  const std::vector<float> logits = adjusted_logits(logits_in, recent, p);
  if (p.is_greedy()) return argmax(logits);
  return draw(distribution_of(logits, p), rng);
}

TokenLogprob token_logprob(std::span<const float> logits, int32_t id, int top) {
  const size_t V = logits.size();
  FLASHRT_CHECK(id >= 0 && static_cast<size_t>(id) < V, "internal: token {} outside the logits",
                id);
  // log p_i = l_i - (max + log sum exp(l - max)), summed in double.
  const float mx = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float l : logits) sum += std::exp(static_cast<double>(l) - mx);
  const double lse = mx + std::log(sum);
  auto lp = [&](size_t i) { return static_cast<float>(static_cast<double>(logits[i]) - lse); };
  TokenLogprob out;
  out.id = id;
  out.logprob = lp(static_cast<size_t>(id));
  const size_t k = std::min(V, static_cast<size_t>(std::max(top, 0)));
  if (k == 0) return out;
  std::vector<int32_t> order(V);
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(
      order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(),
      [&](int32_t a, int32_t b) {
        return logits[static_cast<size_t>(a)] > logits[static_cast<size_t>(b)] ||
               (logits[static_cast<size_t>(a)] == logits[static_cast<size_t>(b)] && a < b);
      });
  for (size_t i = 0; i < k; ++i) out.top.push_back({order[i], lp(static_cast<size_t>(order[i]))});
  return out;
}

}  // namespace flashrt

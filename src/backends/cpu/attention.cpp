// Causal softmax attention over the slot's contiguous KV cache (GQA: query head h reads KV head
// h / (Hq / Hkv)). Each (query, head) pair is one task with its own score row.
#include <algorithm>
#include <cmath>
#include <vector>

#include "backends/cpu/kernels.h"

namespace flashrt::cpu {

void attention(ThreadPool& pool, const AttentionArgs& a, int64_t pos0) {
  const int hd = a.head_dim, group = a.n_heads / a.n_kv_heads;
  const int64_t kv_stride = static_cast<int64_t>(a.n_kv_heads) * hd;
  pool.parallel_for(static_cast<int64_t>(a.T) * a.n_heads, 1, [&](int64_t i0, int64_t i1) {
    std::vector<float> scores;
    std::vector<float> acc(static_cast<size_t>(hd));
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t t = i / a.n_heads;
      const int h = static_cast<int>(i % a.n_heads), kh = h / group;
      const int64_t n = pos0 + t + 1;  // keys visible to this query
      const float* q = a.q + i * hd;
      scores.resize(static_cast<size_t>(n));
      float mx = -INFINITY;
      for (int64_t j = 0; j < n; ++j) {
        scores[static_cast<size_t>(j)] = dot_f32(q, a.k_cache + j * kv_stride + kh * hd, hd) * a.scale;
        mx = std::max(mx, scores[static_cast<size_t>(j)]);
      }
      float sum = 0;
      for (int64_t j = 0; j < n; ++j) {
        scores[static_cast<size_t>(j)] = std::exp(scores[static_cast<size_t>(j)] - mx);
        sum += scores[static_cast<size_t>(j)];
      }
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int64_t j = 0; j < n; ++j) {
        const float p = scores[static_cast<size_t>(j)];
        const float* v = a.v_cache + j * kv_stride + kh * hd;
        for (int d = 0; d < hd; ++d) acc[static_cast<size_t>(d)] += p * v[d];
      }
      float* o = a.out + i * hd;
      const float inv = 1.0f / sum;
      for (int d = 0; d < hd; ++d) o[d] = acc[static_cast<size_t>(d)] * inv;
    }
  });
}

}  // namespace flashrt::cpu

// Causal softmax attention over the slot's contiguous KV cache (GQA: query head h reads KV head
// h / (Hq / Hkv)).
//
// With a vector kernel table, one task is a tile of up to kAttnQueryTile tokens x the query heads
// sharing one KV head: they walk the cache together, so each key and value block is read once for
// all of them, in blocks of kAttnKeyBlock keys aligned to position 0 with an online softmax. A
// query row sees the same blocks with the same arithmetic whether it is decoded alone or prefilled
// with others, so results do not depend on batching. Tasks go to threads round-robin (later tiles
// have more keys). Without a table: the scalar reference, one (query, head) pair per task with a
// full score row.
#include <algorithm>
#include <cmath>
#include <vector>

#include "backends/cpu/isa.h"
#include "backends/cpu/kernels.h"

namespace flashrt::cpu {

namespace {

void attention_reference(ThreadPool& pool, const AttentionArgs& a, int64_t pos0) {
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
        scores[static_cast<size_t>(j)] =
            dot_f32(q, a.k_cache + j * kv_stride + kh * hd, hd) * a.scale;
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

}  // namespace

void attention(ThreadPool& pool, const AttentionArgs& a, int64_t pos0) {
  const KernelTable* k = kernel_table();
  if (!k) {
    attention_reference(pool, a, pos0);
    return;
  }
  const int hd = a.head_dim, group = a.n_heads / a.n_kv_heads;
  const int64_t kv_stride = static_cast<int64_t>(a.n_kv_heads) * hd;
  const int64_t q_stride = static_cast<int64_t>(a.n_heads) * hd;
  const int tiles = (a.T + kAttnQueryTile - 1) / kAttnQueryTile;
  const int64_t tasks = static_cast<int64_t>(tiles) * a.n_kv_heads;
  const size_t scratch_floats = attention_scratch_floats(kAttnQueryTile * group, hd);
  pool.run([&](int tid, int nth) {
    thread_local std::vector<float> scratch;
    if (scratch.size() < scratch_floats) scratch.resize(scratch_floats);
    for (int64_t i = tid; i < tasks; i += nth) {
      const int tile = static_cast<int>(i / a.n_kv_heads), kh = static_cast<int>(i % a.n_kv_heads);
      const int t0 = tile * kAttnQueryTile, tokens = std::min(kAttnQueryTile, a.T - t0);
      const int64_t off =
          t0 * q_stride + static_cast<int64_t>(kh) * group * hd;  // row (t0, first head)
      k->attention_tile(a.out + off, a.q + off, q_stride, group, tokens, a.k_cache + kh * hd,
                        a.v_cache + kh * hd, kv_stride, pos0 + t0 + 1, hd, a.scale, scratch.data());
    }
  });
}

}  // namespace flashrt::cpu

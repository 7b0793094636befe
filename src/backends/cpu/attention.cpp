// Causal softmax attention over the slot's contiguous KV cache (GQA: query head h reads KV head
// h / (Hq / Hkv)), f32 or IEEE half (widened exactly to f32 as it is read), and the writes into it.
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
#include <cstring>
#include <vector>

#include "backends/cpu/isa.h"
#include "backends/cpu/kernels.h"
#include "core/error.h"
#include "core/half.h"

namespace flashrt::cpu {

namespace {

// Row `row` of an f32 or f16 cache (kv_stride elements per row) at element offset `off`, as f32
// (f16 rows converted into buf).
const float* kv_row(const void* cache, bool f16, int64_t row, int64_t kv_stride, int64_t off,
                    int hd, float* buf) {
  if (!f16) return static_cast<const float*>(cache) + row * kv_stride + off;
  const uint16_t* h = static_cast<const uint16_t*>(cache) + row * kv_stride + off;
  for (int d = 0; d < hd; ++d) buf[d] = f16_to_f32(h[d]);
  return buf;
}

void attention_reference(ThreadPool& pool, const AttentionArgs& a, int T, const void* k_cache,
                         const void* v_cache, int64_t pos0) {
  const int hd = a.head_dim, group = a.n_heads / a.n_kv_heads;
  const int64_t kv_stride = static_cast<int64_t>(a.n_kv_heads) * hd;
  const bool f16 = a.kv_dtype == DType::F16;
  pool.parallel_for(static_cast<int64_t>(T) * a.n_heads, 1, [&](int64_t i0, int64_t i1) {
    std::vector<float> scores;
    std::vector<float> acc(static_cast<size_t>(hd)), row(static_cast<size_t>(hd));
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t t = i / a.n_heads;
      const int h = static_cast<int>(i % a.n_heads), kh = h / group;
      const int64_t n = pos0 + t + 1;  // keys visible to this query
      const float* q = a.q + i * hd;
      scores.resize(static_cast<size_t>(n));
      float mx = -INFINITY;
      for (int64_t j = 0; j < n; ++j) {
        const float* kr = kv_row(k_cache, f16, j, kv_stride, kh * hd, hd, row.data());
        scores[static_cast<size_t>(j)] = dot_f32(q, kr, hd) * a.scale;
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
        const float* v = kv_row(v_cache, f16, j, kv_stride, kh * hd, hd, row.data());
        for (int d = 0; d < hd; ++d) acc[static_cast<size_t>(d)] += p * v[d];
      }
      float* o = a.out + i * hd;
      const float inv = 1.0f / sum;
      for (int d = 0; d < hd; ++d) o[d] = acc[static_cast<size_t>(d)] * inv;
    }
  });
}

}  // namespace

void store_rows(ThreadPool& pool, void* region, DType dtype, const float* src, int T,
                int64_t row_elems, int64_t pos0) {
  const int64_t n = static_cast<int64_t>(T) * row_elems;
  if (n == 0) return;
  if (dtype == DType::F32) {
    std::memcpy(static_cast<float*>(region) + pos0 * row_elems, src,
                static_cast<size_t>(n) * sizeof(float));
    return;
  }
  FLASHRT_CHECK(dtype == DType::F16, "KV cache of type {} is not supported", dtype_name(dtype));
  uint16_t* dst = static_cast<uint16_t*>(region) + pos0 * row_elems;
  const KernelTable* k = kernel_table();
  pool.parallel_for(T, 16, [&](int64_t t0, int64_t t1) {
    const int64_t off = t0 * row_elems, len = (t1 - t0) * row_elems;
    if (k)
      k->to_f16(dst + off, src + off, len);
    else
      for (int64_t i = 0; i < len; ++i) dst[off + i] = f32_to_f16(src[off + i]);
  });
}

void attention(ThreadPool& pool, const AttentionArgs& a, int T, const void* k_cache,
               const void* v_cache, int64_t pos0) {
  FLASHRT_CHECK(a.kv_dtype == DType::F32 || a.kv_dtype == DType::F16,
                "KV cache of type {} is not supported", dtype_name(a.kv_dtype));
  const KernelTable* k = kernel_table();
  if (!k) {
    attention_reference(pool, a, T, k_cache, v_cache, pos0);
    return;
  }
  const int hd = a.head_dim, group = a.n_heads / a.n_kv_heads;
  const int64_t kv_stride = static_cast<int64_t>(a.n_kv_heads) * hd;
  const int64_t q_stride = static_cast<int64_t>(a.n_heads) * hd;
  const int tiles = (T + kAttnQueryTile - 1) / kAttnQueryTile;
  const int64_t tasks = static_cast<int64_t>(tiles) * a.n_kv_heads;
  const size_t scratch_floats = attention_scratch_floats(kAttnQueryTile * group, hd);
  const bool f16 = a.kv_dtype == DType::F16;
  pool.run([&](int tid, int nth) {
    thread_local std::vector<float> scratch;
    if (scratch.size() < scratch_floats) scratch.resize(scratch_floats);
    for (int64_t i = tid; i < tasks; i += nth) {
      const int tile = static_cast<int>(i / a.n_kv_heads), kh = static_cast<int>(i % a.n_kv_heads);
      const int t0 = tile * kAttnQueryTile, tokens = std::min(kAttnQueryTile, T - t0);
      const int64_t off =
          t0 * q_stride + static_cast<int64_t>(kh) * group * hd;             // row (t0, first head)
      const int64_t kv_off = static_cast<int64_t>(kh) * hd * (f16 ? 2 : 4);  // bytes
      k->attention_tile(a.out + off, a.q + off, q_stride, group, tokens,
                        static_cast<const uint8_t*>(k_cache) + kv_off,
                        static_cast<const uint8_t*>(v_cache) + kv_off, f16, kv_stride,
                        pos0 + t0 + 1, hd, a.scale, scratch.data());
    }
  });
}

}  // namespace flashrt::cpu

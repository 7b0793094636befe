// Matrix products with weights of any stored type, and the embedding lookup.
//
// matmul hands row ranges of W to the active kernel table (isa.h) on every thread of the pool;
// quantized weights first get their activations quantized to int8, one row at a time. Without a
// vector ISA it falls back to matmul_reference: rows of W converted to f32 a few at a time and
// dotted with every activation row, so each weight byte is read once per call.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <vector>

#include "backends/cpu/isa.h"
#include "backends/cpu/kernels.h"
#include "core/error.h"
#include "formats/quant.h"

namespace flashrt::cpu {

float dot_f32(const float* a, const float* b, int64_t n) {
  float acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) acc[j] += a[i + j] * b[i + j];
  float tail = 0;
  for (; i < n; ++i) tail += a[i] * b[i];
  for (int w = 8; w >= 1; w /= 2)
    for (int j = 0; j < w; ++j) acc[j] += acc[j + w];
  return acc[0] + tail;
}

void matmul_reference(ThreadPool& pool, float* out, const float* x, const Mat& w, int T) {
  constexpr int kRows = 4;  // weight rows converted and used together
  const int64_t N = w.rows, K = w.cols;
  const int64_t blocks = (N + kRows - 1) / kRows;
  pool.parallel_for(blocks, 4, [&](int64_t b0, int64_t b1) {
    thread_local std::vector<float> buf;
    if (w.dtype != DType::F32) buf.resize(static_cast<size_t>(kRows * K));
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t n0 = b * kRows, nr = std::min<int64_t>(kRows, N - n0);
      const float* rows[kRows];
      for (int64_t r = 0; r < nr; ++r) {
        if (w.dtype == DType::F32) {
          rows[r] = reinterpret_cast<const float*>(w.row(n0 + r));
        } else {
          dequantize_row(w.dtype, w.row(n0 + r), buf.data() + r * K, K);
          rows[r] = buf.data() + r * K;
        }
      }
      for (int t = 0; t < T; ++t) {
        const float* xt = x + static_cast<int64_t>(t) * K;
        float* ot = out + static_cast<int64_t>(t) * N + n0;
        for (int64_t r = 0; r < nr; ++r) ot[r] = dot_f32(xt, rows[r], K);
      }
    }
  });
}

namespace {

int weight_type(DType t) {
  switch (t) {
    case DType::F32:
      return kWF32;
    case DType::F16:
      return kWF16;
    case DType::BF16:
      return kWBF16;
    case DType::Q8_0:
      return kWQ8_0;
    case DType::Q4_0:
      return kWQ4_0;
    case DType::Q4_K:
      return kWQ4_K;
    case DType::Q6_K:
      return kWQ6_K;
    default:
      return -1;
  }
}

// Quantized activations, reused from call to call by the calling thread.
struct ActBuffers {
  std::vector<int8_t> q;
  std::vector<float> d;
  std::vector<int32_t> corr;
  std::vector<int16_t> bsum, bsum32;

  QuantActs prepare(int64_t K, int T, int block) {
    const auto n = static_cast<size_t>(T) * static_cast<size_t>(K);
    if (q.size() < n) q.resize(n);
    if (d.size() < n / 32) d.resize(n / 32);
    if (corr.size() < n / 32) corr.resize(n / 32);
    if (block != 32) {
      if (bsum.size() < n / 16) bsum.resize(n / 16);
      if (bsum32.size() < n / 32) bsum32.resize(n / 32);
    }
    return {q.data(), d.data(), corr.data(), bsum.data(), bsum32.data(), K, block};
  }
};

}  // namespace

void matmul(ThreadPool& pool, float* out, const float* x, const Mat& w, int T) {
  const KernelTable* k = kernel_table();
  const int wt = weight_type(w.dtype);
  if (!k || wt < 0) {
    matmul_reference(pool, out, x, w, T);
    return;
  }
  const WeightView wv{w.data, w.row_bytes(), w.rows, w.cols, wt};
  QuantActs acts{};
  if (wt >= kWQ8_0) {
    const int block = (wt == kWQ4_K || wt == kWQ6_K) ? kQK_K : 32;
    FLASHRT_CHECK(w.cols % block == 0, "a {} matrix needs a multiple of {} columns, not {}",
                  dtype_name(w.dtype), block, w.cols);
    thread_local ActBuffers bufs;  // the caller's; the workers read it through acts
    acts = bufs.prepare(w.cols, T, block);
    pool.parallel_for(T, 16, [&](int64_t t0, int64_t t1) {
      k->quantize_acts(x, static_cast<int>(t0), static_cast<int>(t1), wt, &acts);
    });
  }
  const int64_t group = k->matmul_row_group(wv, T);
  const int64_t groups = (w.rows + group - 1) / group;
  const size_t scratch_bytes = k->matmul_scratch(wv, T);
  // Threads take chunks of row groups from a shared counter rather than fixed halves: cores do
  // not stream memory at the same rate, and a fixed split left the faster one waiting ~9% of a
  // decode step. Each output row is computed the same way whichever thread takes it.
  const int64_t chunks_per_thread = T <= 4 ? 16 : 8;
  const int64_t chunk =
      std::max<int64_t>(1, groups / (static_cast<int64_t>(pool.size()) * chunks_per_thread));
  std::atomic<int64_t> next{0};
  pool.run([&](int, int) {
    thread_local std::vector<uint8_t> scratch;
    if (scratch.size() < scratch_bytes) scratch.resize(scratch_bytes);
    for (int64_t g0 = next.fetch_add(chunk, std::memory_order_relaxed); g0 < groups;
         g0 = next.fetch_add(chunk, std::memory_order_relaxed)) {
      const int64_t g1 = std::min(g0 + chunk, groups);
      k->matmul_rows(out, wv, g0 * group, std::min(g1 * group, w.rows), T, x, &acts,
                     scratch.data());
    }
  });
}

void embed(float* out, const Mat& table, const int32_t* ids, int T) {
  for (int t = 0; t < T; ++t) {
    const int32_t id = ids[t];
    FLASHRT_CHECK(id >= 0 && id < table.rows, "token id {} is outside the vocabulary (0..{})", id,
                  table.rows - 1);
    dequantize_row(table.dtype, table.row(id), out + static_cast<int64_t>(t) * table.cols,
                   table.cols);
  }
}

}  // namespace flashrt::cpu

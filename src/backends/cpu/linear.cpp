// Matrix products with weights of any stored type (f32, f16, bf16, q8_0, q4_0): rows of W are
// converted to f32 a few at a time and dotted with every activation row, so each weight byte is read
// once per call. (The fast quantized kernels of the CPU-speed work replace this; it stays as the
// reference they are checked against.)
#include <algorithm>
#include <cstring>
#include <vector>

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

void matmul(ThreadPool& pool, float* out, const float* x, const Mat& w, int T) {
  constexpr int kRows = 4;  // weight rows converted and used together
  const int64_t N = w.rows, K = w.cols;
  const int64_t blocks = (N + kRows - 1) / kRows;
  // Few rows per task for decode (memory-bound, spread the bytes), more for prefill.
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

void embed(float* out, const Mat& table, const int32_t* ids, int T) {
  for (int t = 0; t < T; ++t) {
    const int32_t id = ids[t];
    FLASHRT_CHECK(id >= 0 && id < table.rows, "token id {} is outside the vocabulary (0..{})", id, table.rows - 1);
    dequantize_row(table.dtype, table.row(id), out + static_cast<int64_t>(t) * table.cols, table.cols);
  }
}

}  // namespace flashrt::cpu

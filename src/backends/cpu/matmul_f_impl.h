// Matrix products with f32, f16 and bf16 weights (converted to f32 in registers, exact) and f32
// activations, against the 16-lane vector interface (include simd_avx512.h or simd_avx2.h first).
//
// Each output element is one dot product with 16 lane accumulators: lane j sums
// w[16 i + j] * x[16 i + j] over i in order with fused multiply-adds (the last partial chunk
// zero-filled), and fsum adds the lanes in a fixed tree. A tile of R weight rows x C activation
// rows shares the loads; the arithmetic of each element is the same for every tile shape, so the
// decode GEMV (C = T <= kFCols) and the prefill GEMM agree bit for bit.
#pragma once
#ifndef FLASHRT_CPU_SIMD
#error "include simd_avx512.h or simd_avx2.h before the kernels"
#endif

namespace flashrt::cpu {
namespace {

template <int WT>
inline VF wload(const uint8_t* row, int64_t k) {
  if constexpr (WT == kWBF16)
    return fload_bf16(reinterpret_cast<const uint16_t*>(row) + k);
  else if constexpr (WT == kWF16)
    return fload_f16(reinterpret_cast<const uint16_t*>(row) + k);
  else
    return fload(reinterpret_cast<const float*>(row) + k);
}
template <int WT>
inline VF wloadn(const uint8_t* row, int64_t k, int n) {
  if constexpr (WT == kWBF16)
    return fload_bf16n(reinterpret_cast<const uint16_t*>(row) + k, n);
  else if constexpr (WT == kWF16)
    return fload_f16n(reinterpret_cast<const uint16_t*>(row) + k, n);
  else
    return floadn(reinterpret_cast<const float*>(row) + k, n);
}

// Rows are read R at a time; the next R rows (contiguous) are prefetched meanwhile, a slice per
// step, so decode reads the matrix as one stream (see matmul_q_impl.h's NextGroup).
template <int WT, int R, int C>
void f_tile(const WeightView& w, int64_t n, int valid, const float* x, int t0, float* out,
            const uint8_t* next, size_t next_bytes) {
  const int64_t K = w.cols, N = w.rows;
  const size_t steps = static_cast<size_t>((K + 15) / 16);
  const size_t lines = next ? ((next_bytes + 63) / 64 + steps - 1) / steps : 0;
  const uint8_t* rows[R];
  for (int r = 0; r < R; ++r)
    rows[r] = w.data + static_cast<size_t>(n + (r < valid ? r : valid - 1)) * w.row_bytes;
  const float* xs[C];
  for (int c = 0; c < C; ++c) xs[c] = x + (t0 + c) * K;
  VF acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = fzero();
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) {
    for (size_t i = 0; i < lines; ++i)
      _mm_prefetch(reinterpret_cast<const char*>(next + ((k / 16) * lines + i) * 64), _MM_HINT_T0);
    VF wv[R];
    for (int r = 0; r < R; ++r) wv[r] = wload<WT>(rows[r], k);
    for (int c = 0; c < C; ++c) {
      const VF xv = fload(xs[c] + k);
      for (int r = 0; r < R; ++r) acc[r][c] = fma(wv[r], xv, acc[r][c]);
    }
  }
  if (k < K) {
    const int rem = static_cast<int>(K - k);
    VF wv[R];
    for (int r = 0; r < R; ++r) wv[r] = wloadn<WT>(rows[r], k, rem);
    for (int c = 0; c < C; ++c) {
      const VF xv = floadn(xs[c] + k, rem);
      for (int r = 0; r < R; ++r) acc[r][c] = fma(wv[r], xv, acc[r][c]);
    }
  }
  for (int c = 0; c < C; ++c)
    for (int r = 0; r < R && r < valid; ++r) out[(t0 + c) * N + n + r] = fsum(acc[r][c]);
}

// Decode (one activation row): rows one after another as a single stream, four 16-lane loads in
// flight per step and a software prefetch 2 KiB ahead in the stream (a single stream with a fixed
// lead reads ~12% faster on this class of machine than R interleaved rows). Same arithmetic as
// f_tile: one accumulator per row, chunks of 16 in order, the zero-filled tail, fsum.
template <int WT>
void f_gemv(const WeightView& w, int64_t n0, int64_t n1, const float* x, float* out) {
  constexpr int64_t kLead = 2048;
  constexpr int64_t kStepBytes = 64 * (WT == kWF32 ? 4 : 2);  // 64 values: 2 or 4 cache lines
  const int64_t K = w.cols;
  const uint8_t* end = w.data + static_cast<size_t>(w.rows) * w.row_bytes;
  for (int64_t n = n0; n < n1; ++n) {
    const uint8_t* row = w.data + static_cast<size_t>(n) * w.row_bytes;
    VF acc = fzero();
    int64_t k = 0;
    for (; k + 64 <= K; k += 64) {
      const uint8_t* pf = row + k * (kStepBytes / 64) + kLead;
      for (int64_t line = 0; line < kStepBytes; line += 64)
        if (pf + line < end) _mm_prefetch(reinterpret_cast<const char*>(pf + line), _MM_HINT_T0);
      const VF w0 = wload<WT>(row, k), w1 = wload<WT>(row, k + 16);
      const VF w2 = wload<WT>(row, k + 32), w3 = wload<WT>(row, k + 48);
      acc = fma(w0, fload(x + k), acc);
      acc = fma(w1, fload(x + k + 16), acc);
      acc = fma(w2, fload(x + k + 32), acc);
      acc = fma(w3, fload(x + k + 48), acc);
    }
    for (; k + 16 <= K; k += 16) acc = fma(wload<WT>(row, k), fload(x + k), acc);
    if (k < K) {
      const int rem = static_cast<int>(K - k);
      acc = fma(wloadn<WT>(row, k, rem), floadn(x + k, rem), acc);
    }
    out[n] = fsum(acc);
  }
}

// All rows [n0, n1) for activation rows [t0, t0 + C).
template <int WT, int C>
void f_cols(const WeightView& w, int64_t n0, int64_t n1, const float* x, int t0, float* out) {
  for (int64_t n = n0; n < n1; n += kFRows) {
    const int valid = static_cast<int>(n1 - n < kFRows ? n1 - n : kFRows);
    const int64_t nn = n + kFRows;
    const uint8_t* next = nn < n1 ? w.data + static_cast<size_t>(nn) * w.row_bytes : nullptr;
    const size_t next_bytes =
        static_cast<size_t>(n1 - nn < kFRows ? n1 - nn : kFRows) * w.row_bytes;
    f_tile<WT, kFRows, C>(w, n, valid, x, t0, out, next, next_bytes);
  }
}

template <int WT, int C>
void f_cols_upto(const WeightView& w, int64_t n0, int64_t n1, const float* x, int t0, int cols,
                 float* out) {
  if constexpr (C > 0) {
    if (cols == C)
      f_cols<WT, C>(w, n0, n1, x, t0, out);
    else
      f_cols_upto<WT, C - 1>(w, n0, n1, x, t0, cols, out);
  }
}

template <int WT>
void f_matmul_rows_t(float* out, const WeightView& w, int64_t n0, int64_t n1, int T,
                     const float* x) {
  if (T == 1) {
    f_gemv<WT>(w, n0, n1, x, out);
    return;
  }
  // Rows in blocks whose weights stay in L2 while every tile of activation rows passes over them.
  const int64_t wbytes = static_cast<int64_t>(w.row_bytes);
  int64_t block = (256 << 10) / (wbytes > 0 ? wbytes : 1);
  block = block < kFRows ? kFRows : block / kFRows * kFRows;
  for (int64_t nb0 = n0; nb0 < n1; nb0 += block) {
    const int64_t nb1 = nb0 + block < n1 ? nb0 + block : n1;
    int t0 = 0;
    for (; t0 + kFCols <= T; t0 += kFCols) f_cols<WT, kFCols>(w, nb0, nb1, x, t0, out);
    if (t0 < T) f_cols_upto<WT, kFCols - 1>(w, nb0, nb1, x, t0, T - t0, out);
  }
}

void f_matmul_rows(float* out, const WeightView& w, int64_t n0, int64_t n1, int T, const float* x) {
  switch (w.type) {
    case kWBF16:
      f_matmul_rows_t<kWBF16>(out, w, n0, n1, T, x);
      break;
    case kWF16:
      f_matmul_rows_t<kWF16>(out, w, n0, n1, T, x);
      break;
    default:
      f_matmul_rows_t<kWF32>(out, w, n0, n1, T, x);
      break;
  }
}

}  // namespace
}  // namespace flashrt::cpu

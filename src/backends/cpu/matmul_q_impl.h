// Int8 matrix products for Q8_0, Q4_0, Q4_K and Q6_K weights, written against the 16-lane vector
// interface of simd_avx512.h / simd_avx2.h (include one of those first).
//
// Activations are quantized per row to int8 (32-value blocks with an f32 scale for Q8_0/Q4_0, 256
// for the K-quants, as llama.cpp's q8_0 / q8_K). Each output element is then
//   Q8_0/Q4_0: acc = fma(float(isum_b), dw_b * dx_b, acc) over the 32-blocks b in order;
//   Q4_K:      acc = fma(float(isum_b), d_b * dx_b, acc); acc -= float(msum_b) * (dmin_b * dx_b)
//              over super-blocks b, isum_b = sum_j sc_j * (q . x)_j, msum_b = sum_j m_j * sum(x)_j;
//   Q6_K:      acc = fma(float(isum_b), d_b * dx_b, acc), isum_b = sum_j sc_j * ((q - 32) . x)_j;
// starting from acc = 0, with the integer sums exact. Lanes hold 16 weight rows, so the float
// steps are the same vector operations in the GEMV (weights transposed in registers) and the
// GEMM (weights repacked into a panel once and reused across activation rows): results are
// bit-identical for every T, tile shape and row split.
#pragma once
#ifndef FLASHRT_CPU_SIMD
#error "include simd_avx512.h or simd_avx2.h before the kernels"
#endif

namespace flashrt::cpu {
namespace {

constexpr int kQK = 256;  // K-quant super-block

// Raw block layouts (llama.cpp's, as in formats/quant.h).
constexpr int kQ8Bytes = 34, kQ4Bytes = 18, kQ4KBytes = 144, kQ6KBytes = 210;

// ---- activation quantization ----

inline float block_amax(const float* x, int n) {
  VF m = fzero();
  for (int i = 0; i < n; i += 16) m = fmax(m, fabs(fload(x + i)));
  return fhmax(m);
}

void quantize_acts(const float* x, int t0, int t1, int wtype, QuantActs* a) {
  const int64_t K = a->K;
  const int B = a->block;
  // 32-blocks: the dot products see the weights as unsigned (value + off), corrected by
  // -off * sum(x) per block (see q32_unpack).
  const int32_t off = wtype == kWQ4_0 ? 8 : (wtype == kWQ8_0 && kVnni) ? 128 : 0;
  for (int t = t0; t < t1; ++t) {
    const float* xr = x + t * K;
    int8_t* q = a->q + t * K;
    for (int64_t b = 0; b < K / B; ++b) {
      const float* xb = xr + b * B;
      const float amax = block_amax(xb, B);
      const float d = amax / 127.0f;
      const VF id = fset(d != 0 ? 1.0f / d : 0.0f);
      a->d[t * (K / B) + b] = d;
      for (int i = 0; i < B; i += 32) {
        const VI q0 = ftoi(fload(xb + i) * id), q1 = ftoi(fload(xb + i + 16) * id);
        istore_i8(q + b * B + i, q0);
        istore_i8(q + b * B + i + 16, q1);
        const int64_t blk32 = (b * B + i) / 32;
        if (B == 32) {
          a->corr[t * (K / 32) + blk32] = -off * ihadd(q0 + q1);
        } else {
          // |sums| <= 32 * 127: they fit int16, the K-quant kernels' pair products take them so
          const int32_t s0 = ihadd(q0), s1 = ihadd(q1);
          a->bsum32[t * (K / 32) + blk32] = static_cast<int16_t>(s0 + s1);
          a->bsum[t * (K / 16) + 2 * blk32] = static_cast<int16_t>(s0);
          a->bsum[t * (K / 16) + 2 * blk32 + 1] = static_cast<int16_t>(s1);
        }
      }
    }
  }
}

// ---- 16-row "columns" of one block, unpacked with lanes = rows ----

// 16 rows at base + r * stride (a partial group is first copied into padded scratch rows).
struct Rows16 {
  const uint8_t* base;
  size_t stride;
  VI offs;  // r * stride, for gathers
  Rows16() : base(nullptr), stride(0), offs(izero()) {}
  Rows16(const uint8_t* b, size_t s)
      : base(b), stride(s), offs(imul(iota(), iset(static_cast<int32_t>(s)))) {}
  const uint8_t* at(size_t off) const { return base + off; }
};

// Q8_0 / Q4_0: 8 vectors of 4-value groups (vector q holds values 4q..4q+3 of each row) and the
// scales. The weights come out unsigned (Q4_0: q in 0..15; Q8_0 with VNNI: w + 128), corrected by
// the activations' corr = -offset * sum(x); Q8_0 without VNNI stays signed.
template <int WT>
inline void q32_unpack(const Rows16& g, int64_t b, VI W[8], VF* dw) {
  if constexpr (WT == kWQ8_0) {
    transpose_16x8(g.at(b * kQ8Bytes + 2), g.stride, W);
    if (kVnni)
      for (int q = 0; q < 8; ++q) W[q] = W[q] ^ iset(static_cast<int32_t>(0x80808080u));
    *dw = gather_f16<false>(g.at(b * kQ8Bytes), g.offs);
  } else {
    VI R[4];
    transpose_16x4(g.at(b * kQ4Bytes + 2), g.stride, R);
    const VI m = iset(0x0f0f0f0f);
    for (int q = 0; q < 4; ++q) {
      W[q] = R[q] & m;               // values 4q..4q+3: low nibbles
      W[q + 4] = isrl<4>(R[q]) & m;  // values 16 + 4q..: high nibbles
    }
    *dw = gather_f16<false>(g.at(b * kQ4Bytes), g.offs);
  }
}

template <bool kSigned>
inline VI qdot(VI acc, VI w, VI x) {
  if constexpr (kSigned)
    return dot_s8s8(acc, x, w);
  else
    return dot_u8s8(acc, w, x);
}

// One 32-block for R row vectors x C activation rows; w(r, q) and dw(r) give the unpacked column.
template <int WT, int R, int C, typename WFn, typename DFn>
inline void q32_step(WFn&& w, DFn&& dw, const QuantActs& a, int t0, int64_t b, VF (&fa)[R][C]) {
  constexpr bool kSigned = WT == kWQ8_0 && !kVnni;
  const int64_t K = a.K, nb = K / 32;
  VI ia[R][C];
  for (int c = 0; c < C; ++c) {
    const VI init = kSigned ? izero() : iset(a.corr[(t0 + c) * nb + b]);
    for (int r = 0; r < R; ++r) ia[r][c] = init;
  }
  for (int q = 0; q < 8; ++q) {
    VI wq[R];
    for (int r = 0; r < R; ++r) wq[r] = w(r, q);
    for (int c = 0; c < C; ++c) {
      const VI x = ibcast4(a.q + (t0 + c) * K + b * 32 + 4 * q);
      for (int r = 0; r < R; ++r) ia[r][c] = qdot<kSigned>(ia[r][c], wq[r], x);
    }
  }
  for (int r = 0; r < R; ++r) {
    const VF d = dw(r);
    for (int c = 0; c < C; ++c)
      fa[r][c] = fma(itof(ia[r][c]), d * fbcast(a.d + (t0 + c) * nb + b), fa[r][c]);
  }
}

// ---- Q4_K ----
// Per super-block column: 64 VI of values (sub-block j, group q at 8j + q), 8 VI of sub-block
// scales (i32), 4 VI of mins as i16 pairs (m_2i, m_2i+1), d and dmin.
constexpr size_t kQ4KUnpacked = 64 * 64 + 8 * 64 + 4 * 64 + 2 * 64;

inline void q4k_unpack(const Rows16& g, int64_t b, uint8_t* dst) {
  const size_t blk = static_cast<size_t>(b) * kQ4KBytes;
  const VI m4 = iset(0x0f0f0f0f);
  for (int c = 0; c < 4; ++c) {  // 32-byte chunk c of qs: sub-blocks 2c (low) and 2c + 1 (high)
    VI R[8];
    transpose_16x8(g.at(blk + 16 + 32 * c), g.stride, R);
    for (int q = 0; q < 8; ++q) {
      istore(dst + 64 * (8 * (2 * c) + q), R[q] & m4);
      istore(dst + 64 * (8 * (2 * c + 1) + q), isrl<4>(R[q]) & m4);
    }
  }
  // scales: 12 bytes per row, read as 3 dwords S0 (bytes 0-3), S1 (4-7), S2 (8-11)
  VI S[4];
  transpose_16x4(g.at(blk), g.stride, S);  // S[0] = d, dmin; S[1..3] = the scale bytes
  const VI S0 = S[1], S1 = S[2], S2 = S[3];
  const VI m6 = iset(63), m2 = iset(3), mf = iset(15);
  VI sc[8], mn[8];
  for (int j = 0; j < 4; ++j) {
    sc[j] = isrlv(S0, 8 * j) & m6;
    mn[j] = isrlv(S1, 8 * j) & m6;
    sc[j + 4] = (isrlv(S2, 8 * j) & mf) | isll<4>(isrlv(S0, 8 * j + 6) & m2);
    mn[j + 4] = (isrlv(S2, 8 * j + 4) & mf) | isll<4>(isrlv(S1, 8 * j + 6) & m2);
  }
  uint8_t* o = dst + 64 * 64;
  for (int j = 0; j < 8; ++j) istore(o + 64 * j, sc[j]);
  o += 8 * 64;
  for (int i = 0; i < 4; ++i) istore(o + 64 * i, mn[2 * i] | isll<16>(mn[2 * i + 1]));
  o += 4 * 64;
  fstore(reinterpret_cast<float*>(o), f16_lo(S[0]));
  fstore(reinterpret_cast<float*>(o + 64), f16_lo(isrl<16>(S[0])));
}

template <int R, int C>
inline void q4k_step(const uint8_t* pb, size_t col, const QuantActs& a, int t0, int64_t b,
                     VF (&fa)[R][C]) {
  const int64_t K = a.K, nsb = K / kQK;
  VI isum[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) isum[r][c] = izero();
  for (int j = 0; j < 8; ++j) {
    VI part[R][C];
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < C; ++c) part[r][c] = izero();
    for (int q = 0; q < 8; ++q) {
      VI w[R];
      for (int r = 0; r < R; ++r) w[r] = iload(pb + r * col + 64 * (8 * j + q));
      for (int c = 0; c < C; ++c) {
        const VI x = ibcast4(a.q + (t0 + c) * K + b * kQK + 32 * j + 4 * q);
        for (int r = 0; r < R; ++r) part[r][c] = dot_u8s8(part[r][c], w[r], x);
      }
    }
    for (int r = 0; r < R; ++r) {
      const VI sc = iload(pb + r * col + 64 * 64 + 64 * j);
      for (int c = 0; c < C; ++c) isum[r][c] = isum[r][c] + imul(part[r][c], sc);
    }
  }
  for (int r = 0; r < R; ++r) {
    const uint8_t* pr = pb + r * col + 64 * 64 + 8 * 64;
    const VF d = fload(reinterpret_cast<const float*>(pr + 4 * 64));
    const VF dmin = fload(reinterpret_cast<const float*>(pr + 5 * 64));
    for (int c = 0; c < C; ++c) {
      VI msum = izero();
      const int16_t* bs = a.bsum32 + (t0 + c) * (K / 32) + b * 8;
      for (int i = 0; i < 4; ++i) msum = dot_s16(msum, iload(pr + 64 * i), ibcast4(bs + 2 * i));
      const VF dx = fbcast(a.d + (t0 + c) * nsb + b);
      fa[r][c] = fma(itof(isum[r][c]), d * dx, fa[r][c]);
      fa[r][c] = fnma(itof(msum), dmin * dx, fa[r][c]);
    }
  }
}

// ---- Q6_K ----
// Per super-block column: 64 VI of 6-bit values (sub-block j of 16, group q at 4j + q), 16 VI of
// scales (i32), 8 VI of scales as i16 pairs, d.
constexpr size_t kQ6KUnpacked = 64 * 64 + 16 * 64 + 8 * 64 + 64;

inline void q6k_unpack(const Rows16& g, int64_t b, uint8_t* dst) {
  const size_t blk = static_cast<size_t>(b) * kQ6KBytes;
  const VI m4 = iset(0x0f0f0f0f), m2 = iset(0x03030303), m2h = iset(0x30303030);
  for (int h = 0; h < 2; ++h) {
    VI QL0[8], QL1[8], QH[8];
    transpose_16x8(g.at(blk + 64 * h), g.stride, QL0);
    transpose_16x8(g.at(blk + 64 * h + 32), g.stride, QL1);
    transpose_16x8(g.at(blk + 128 + 32 * h), g.stride, QH);
    for (int i = 0; i < 8; ++i) {
      // group index of values 128h + 32s + 4i is 32h + 8s + i
      istore(dst + 64 * (32 * h + i), (QL0[i] & m4) | isll<4>(QH[i] & m2));
      istore(dst + 64 * (32 * h + 8 + i), (QL1[i] & m4) | isll<4>(isrl<2>(QH[i]) & m2));
      istore(dst + 64 * (32 * h + 16 + i), (isrl<4>(QL0[i]) & m4) | (QH[i] & m2h));
      istore(dst + 64 * (32 * h + 24 + i), (isrl<4>(QL1[i]) & m4) | (isrl<2>(QH[i]) & m2h));
    }
  }
  VI S[4];
  transpose_16x4(g.at(blk + 192), g.stride, S);
  uint8_t* o = dst + 64 * 64;
  VI sc[16];
  for (int j = 0; j < 16; ++j) sc[j] = isra24(isllv(S[j / 4], 24 - 8 * (j % 4)));
  for (int j = 0; j < 16; ++j) istore(o + 64 * j, sc[j]);
  o += 16 * 64;
  for (int i = 0; i < 8; ++i)
    istore(o + 64 * i, (sc[2 * i] & iset(0xffff)) | isll<16>(sc[2 * i + 1]));
  o += 8 * 64;
  fstore(reinterpret_cast<float*>(o), gather_f16<true>(g.at(blk + 208), g.offs));
}

template <int R, int C>
inline void q6k_step(const uint8_t* pb, size_t col, const QuantActs& a, int t0, int64_t b,
                     VF (&fa)[R][C]) {
  const int64_t K = a.K, nsb = K / kQK;
  VI isum[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) isum[r][c] = izero();
  for (int j = 0; j < 16; ++j) {
    VI part[R][C];
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < C; ++c) part[r][c] = izero();
    for (int q = 0; q < 4; ++q) {
      VI w[R];
      for (int r = 0; r < R; ++r) w[r] = iload(pb + r * col + 64 * (4 * j + q));
      for (int c = 0; c < C; ++c) {
        const VI x = ibcast4(a.q + (t0 + c) * K + b * kQK + 16 * j + 4 * q);
        for (int r = 0; r < R; ++r) part[r][c] = dot_u8s8(part[r][c], w[r], x);
      }
    }
    for (int r = 0; r < R; ++r) {
      const VI sc = iload(pb + r * col + 64 * 64 + 64 * j);
      for (int c = 0; c < C; ++c) isum[r][c] = isum[r][c] + imul(part[r][c], sc);
    }
  }
  for (int r = 0; r < R; ++r) {
    const uint8_t* pr = pb + r * col + 64 * 64 + 16 * 64;
    const VF d = fload(reinterpret_cast<const float*>(pr + 8 * 64));
    for (int c = 0; c < C; ++c) {
      // the -32 offset of the values: isum -= 32 * sum_j sc_j * sum(x)_j
      VI corr = izero();
      const int16_t* bs = a.bsum + (t0 + c) * (K / 16) + b * 16;
      for (int i = 0; i < 8; ++i) corr = dot_s16(corr, iload(pr + 64 * i), ibcast4(bs + 2 * i));
      fa[r][c] =
          fma(itof(isum[r][c] - isll<5>(corr)), d * fbcast(a.d + (t0 + c) * nsb + b), fa[r][c]);
    }
  }
}

// ---- drivers ----

template <int WT>
constexpr int kBlockValues = (WT == kWQ4_K || WT == kWQ6_K) ? kQK : 32;
template <int WT>
constexpr size_t kUnpacked = WT == kWQ4_K   ? kQ4KUnpacked
                             : WT == kWQ6_K ? kQ6KUnpacked
                                            : 8 * 64 + 64;

// Unpacks block b of a 16-row group into dst (the panel layout: values then scales).
template <int WT>
inline void unpack_to(const Rows16& g, int64_t b, uint8_t* dst) {
  if constexpr (WT == kWQ4_K) {
    q4k_unpack(g, b, dst);
  } else if constexpr (WT == kWQ6_K) {
    q6k_unpack(g, b, dst);
  } else {
    VI W[8];
    VF dw;
    q32_unpack<WT>(g, b, W, &dw);
    for (int q = 0; q < 8; ++q) istore(dst + 64 * q, W[q]);
    fstore(reinterpret_cast<float*>(dst + 512), dw);
  }
}

// One block from an unpacked panel (R columns kUnpacked apart).
template <int WT, int R, int C>
inline void panel_step(const uint8_t* pb, const QuantActs& a, int t0, int64_t b, VF (&fa)[R][C]) {
  constexpr size_t col = kUnpacked<WT>;
  if constexpr (WT == kWQ4_K) {
    q4k_step<R, C>(pb, col, a, t0, b, fa);
  } else if constexpr (WT == kWQ6_K) {
    q6k_step<R, C>(pb, col, a, t0, b, fa);
  } else {
    q32_step<WT, R, C>(
        [&](int r, int q) { return iload(pb + r * col + 64 * q); },
        [&](int r) { return fload(reinterpret_cast<const float*>(pb + r * col + 512)); }, a, t0, b,
        fa);
  }
}

// Stores fa[r][c] to out rows t0 + c, columns n + 16 r (+ lanes), `valid` rows in all.
template <int R, int C>
inline void q_store(float* out, int64_t N, int t0, int64_t n, int valid, const VF (&fa)[R][C]) {
  for (int r = 0; r < R; ++r) {
    const int v = valid - 16 * r;
    if (v <= 0) break;
    for (int c = 0; c < C; ++c) {
      float* o = out + (t0 + c) * N + n + 16 * r;
      if (v >= 16)
        fstore(o, fa[r][c]);
      else
        fstoren(o, fa[r][c], v);
    }
  }
}

// Decode streams each row group's rows side by side, dozens of short interleaved streams that
// the hardware prefetchers follow poorly; so while one group is computed, the next (contiguous in
// memory) is prefetched into L2, a slice per block step: one sequential stream per thread.
struct NextGroup {
  const uint8_t* p = nullptr;  // start of the next group's bytes (nullptr: none)
  size_t lines_per_step = 0;
  void at_step(int64_t b) const {
    if (!p) return;
    const uint8_t* q = p + static_cast<size_t>(b) * lines_per_step * 64;
    for (size_t i = 0; i < lines_per_step; ++i)
      _mm_prefetch(reinterpret_cast<const char*>(q + 64 * i), _MM_HINT_T0);
  }
};
inline NextGroup next_group(const uint8_t* p, size_t bytes, int64_t steps) {
  NextGroup g;
  if (p && steps > 0) {
    g.p = p;
    g.lines_per_step =
        ((bytes + 63) / 64 + static_cast<size_t>(steps) - 1) / static_cast<size_t>(steps);
  }
  return g;
}

// Decode: R x 16 rows streamed once for all C = T activation rows. Q8_0 / Q4_0 columns go
// straight from the transpose into the dot products; K-quant columns through an L1 buffer.
template <int WT, int R, int C>
void q_gemv_tile(const uint8_t* base, size_t stride, const QuantActs& a, int t0, float* out,
                 int64_t N, int64_t n, int valid, uint8_t* col, const NextGroup& next) {
  constexpr int B = kBlockValues<WT>;
  const int64_t nb = a.K / B;
  VF fa[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) fa[r][c] = fzero();
  Rows16 g[R];
  for (int r = 0; r < R; ++r) g[r] = Rows16(base + 16 * r * stride, stride);
  for (int64_t b = 0; b < nb; ++b) {
    next.at_step(b);
    if constexpr (WT == kWQ8_0 || WT == kWQ4_0) {
      VI W[R][8];
      VF dw[R];
      for (int r = 0; r < R; ++r) q32_unpack<WT>(g[r], b, W[r], &dw[r]);
      q32_step<WT, R, C>([&](int r, int q) { return W[r][q]; }, [&](int r) { return dw[r]; }, a, t0,
                         b, fa);
    } else {
      for (int r = 0; r < R; ++r) unpack_to<WT>(g[r], b, col + r * kUnpacked<WT>);
      panel_step<WT, R, C>(col, a, t0, b, fa);
    }
  }
  q_store<R, C>(out, N, t0, n, valid, fa);
}

// Q8_0 / Q4_0 activation rows per GEMV pass over a 16-row group: 8 accumulators, 8 weight
// vectors and the broadcasts fit AVX-512's 32 registers (AVX2 has 16: 4).
constexpr int kGemvCols = kQRows >= 2 ? 8 : 4;
// One pass of `cols` (1..C) activation rows, dispatched to the tile of that width.
template <int WT, int C = kGemvCols>
void q_gemv_cols(const uint8_t* base, size_t stride, const QuantActs& a, int t0, int cols,
                 float* out, int64_t N, int64_t n, int valid, uint8_t* col, const NextGroup& next) {
  if constexpr (C > 1)
    if (cols < C)
      return q_gemv_cols<WT, C - 1>(base, stride, a, t0, cols, out, N, n, valid, col, next);
  q_gemv_tile<WT, 1, C>(base, stride, a, t0, out, N, n, valid, col, next);
}

// Prefill: a panel of kQRows x 16 rows unpacked once, then tiles of C activation rows over it.
template <int WT, int C>
void q_gemm_tile(const uint8_t* panel, const QuantActs& a, int t0, float* out, int64_t N, int64_t n,
                 int valid) {
  constexpr int R = kQRows;
  const int64_t nb = a.K / kBlockValues<WT>;
  VF fa[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) fa[r][c] = fzero();
  for (int64_t b = 0; b < nb; ++b)
    panel_step<WT, R, C>(panel + b * R * kUnpacked<WT>, a, t0, b, fa);
  q_store<R, C>(out, N, t0, n, valid, fa);
}

template <int WT, int C>
void q_gemm_cols(const uint8_t* panel, const QuantActs& a, int t0, int cols, float* out, int64_t N,
                 int64_t n, int valid) {
  if constexpr (C > 0) {
    if (cols >= C) {
      for (; cols >= C; cols -= C, t0 += C) q_gemm_tile<WT, C>(panel, a, t0, out, N, n, valid);
      if (cols > 0) q_gemm_cols<WT, C - 1>(panel, a, t0, cols, out, N, n, valid);
    } else {
      q_gemm_cols<WT, C - 1>(panel, a, t0, cols, out, N, n, valid);
    }
  }
}

// Activation rows up to which the weights are streamed once from memory (GEMV) rather than
// repacked into panels (GEMM). Batched decode (one row per sequence) lives here: Q8_0 / Q4_0 take
// up to 16 rows, in passes of kGemvCols over each 16-row group while it is in L1/L2, so the
// weights are read from memory once per step; the K-quants' unpacked columns are too wide for
// more than 4 (their GEMM takes over).
constexpr int kGemvMaxT = 4;
inline int gemv_max_t(int wtype) {
  return (wtype == kWQ8_0 || wtype == kWQ4_0) && kGemvCols == 8 ? 16 : kGemvMaxT;
}
// Rows of padding scratch: a GEMV tile (2 x 16) or a GEMM panel (kQRows x 16).
constexpr int kPadRows = 16 * (kQRows > 2 ? kQRows : 2);

// Rows [n, n + rows) as a uniform-stride block: in place when all exist, else copied into pad
// with the last row repeated.
inline const uint8_t* padded_rows(const WeightView& w, int64_t n, int rows, uint8_t* pad) {
  if (n + rows <= w.rows) return w.data + static_cast<size_t>(n) * w.row_bytes;
  for (int r = 0; r < rows; ++r) {
    const int64_t src = n + r < w.rows ? n + r : w.rows - 1;
    __builtin_memcpy(pad + r * w.row_bytes, w.data + static_cast<size_t>(src) * w.row_bytes,
                     w.row_bytes);
  }
  return pad;
}

template <int WT>
void q_matmul_rows_t(float* out, const WeightView& w, int64_t n0, int64_t n1, int T,
                     const QuantActs& a, uint8_t* scratch) {
  const size_t rb = w.row_bytes;
  const int64_t nb = w.cols / kBlockValues<WT>;
  uint8_t* pad = scratch;  // kPadRows rows
  uint8_t* buf = pad + (kPadRows * rb + 63) / 64 * 64;
  if constexpr (WT == kWQ8_0 || WT == kWQ4_0) {
    if (T > kGemvMaxT && T <= gemv_max_t(WT)) {
      for (int64_t n = n0; n < n1; n += 16) {
        const int valid = static_cast<int>(n1 - n < 16 ? n1 - n : 16);
        const uint8_t* base = padded_rows(w, n, 16, pad);
        const int64_t n_next = n + 16;
        const NextGroup next =
            n_next < n1
                ? next_group(w.data + static_cast<size_t>(n_next) * rb,
                             static_cast<size_t>(n1 - n_next < 16 ? n1 - n_next : 16) * rb, nb)
                : NextGroup{};
        // The first pass streams the group (and prefetches the next); the others find it cached.
        for (int t0 = 0; t0 < T; t0 += kGemvCols)
          q_gemv_cols<WT>(base, rb, a, t0, T - t0 < kGemvCols ? T - t0 : kGemvCols, out, w.rows, n,
                          valid, buf, t0 == 0 ? next : NextGroup{});
      }
      return;
    }
  }
  if (T <= kGemvMaxT) {
    // One row vector (16 rows) at a time for a single activation row: 16 concurrent row streams
    // read faster than 32 (Q8_0 decode +10% on 2 cores); two for T = 2, where they share more.
    const int R = T == 2 ? 2 : 1;
    for (int64_t n = n0; n < n1; n += 16 * R) {
      const int valid = static_cast<int>(n1 - n < 16 * R ? n1 - n : 16 * R);
      const int r_here = valid > 16 ? 2 : 1;
      const uint8_t* base = padded_rows(w, n, 16 * r_here, pad);
      const int64_t n_next = n + 16 * R;
      const NextGroup next =
          n_next < n1
              ? next_group(w.data + static_cast<size_t>(n_next) * rb,
                           static_cast<size_t>(n1 - n_next < 16 * R ? n1 - n_next : 16 * R) * rb,
                           nb)
              : NextGroup{};
      if (r_here == 2) {
        if (T == 1)
          q_gemv_tile<WT, 2, 1>(base, rb, a, 0, out, w.rows, n, valid, buf, next);
        else
          q_gemv_tile<WT, 2, 2>(base, rb, a, 0, out, w.rows, n, valid, buf, next);
      } else {
        switch (T) {
          case 1:
            q_gemv_tile<WT, 1, 1>(base, rb, a, 0, out, w.rows, n, valid, buf, next);
            break;
          case 2:
            q_gemv_tile<WT, 1, 2>(base, rb, a, 0, out, w.rows, n, valid, buf, next);
            break;
          case 3:
            q_gemv_tile<WT, 1, 3>(base, rb, a, 0, out, w.rows, n, valid, buf, next);
            break;
          default:
            q_gemv_tile<WT, 1, 4>(base, rb, a, 0, out, w.rows, n, valid, buf, next);
            break;
        }
      }
    }
    return;
  }
  constexpr int kPanelRows = 16 * kQRows;
  for (int64_t n = n0; n < n1; n += kPanelRows) {
    const int valid = static_cast<int>(n1 - n < kPanelRows ? n1 - n : kPanelRows);
    const uint8_t* base = padded_rows(w, n, kPanelRows, pad);
    for (int r = 0; r < kQRows; ++r) {
      const Rows16 g(base + 16 * r * rb, rb);
      for (int64_t b = 0; b < nb; ++b) unpack_to<WT>(g, b, buf + (b * kQRows + r) * kUnpacked<WT>);
    }
    constexpr int C = kBlockValues<WT> == 32 ? kQCols : kKCols;
    q_gemm_cols<WT, C>(buf, a, 0, T, out, w.rows, n, valid);
  }
}

size_t q_matmul_scratch(const WeightView& w, int T) {
  size_t col = 0, B = 32;
  switch (w.type) {
    case kWQ4_K:
      col = kQ4KUnpacked, B = kQK;
      break;
    case kWQ6_K:
      col = kQ6KUnpacked, B = kQK;
      break;
    default:
      col = 8 * 64 + 64;
  }
  const size_t pad = (kPadRows * w.row_bytes + 63) / 64 * 64;
  if (T <= gemv_max_t(w.type)) return pad + 2 * col + 64;
  return pad + static_cast<size_t>(w.cols / B) * kQRows * col + 64;
}

void q_matmul_rows(float* out, const WeightView& w, int64_t n0, int64_t n1, int T,
                   const QuantActs& a, uint8_t* scratch) {
  scratch =
      reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(scratch) + 63) & ~uintptr_t{63});
  switch (w.type) {
    case kWQ8_0:
      q_matmul_rows_t<kWQ8_0>(out, w, n0, n1, T, a, scratch);
      break;
    case kWQ4_0:
      q_matmul_rows_t<kWQ4_0>(out, w, n0, n1, T, a, scratch);
      break;
    case kWQ4_K:
      q_matmul_rows_t<kWQ4_K>(out, w, n0, n1, T, a, scratch);
      break;
    case kWQ6_K:
      q_matmul_rows_t<kWQ6_K>(out, w, n0, n1, T, a, scratch);
      break;
    default:
      break;
  }
}

}  // namespace
}  // namespace flashrt::cpu

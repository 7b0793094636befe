// Element-wise ops, attention rows and the Gated DeltaNet recurrence against the 16-lane vector
// interface (include simd_avx512.h or simd_avx2.h first). Each output is computed the same way
// whatever the batch: rows are independent, attention walks keys in blocks of kAttnKeyBlock
// aligned to position 0, and the recurrence goes token by token.
#pragma once
#ifndef FLASHRT_CPU_SIMD
#error "include simd_avx512.h or simd_avx2.h before the kernels"
#endif

namespace flashrt::cpu {
namespace {

// exp(x) = 2^n p(r), n = round(x / ln 2), r = x - n ln 2, p Cephes' expf polynomial (about 1 ulp).
// Inputs below -87.33 give 0 (so exp(-inf) is exactly 0); inputs above 88 give exp(88).
inline VF fexp(VF x) {
  const VF lo = fset(-87.3365447505531f), hi = fset(88.0f);
  const VF xc = fmin(fmax(x, lo), hi);
  const VF n = fround(xc * fset(1.44269504088896341f));
  VF r = fnma(n, fset(0.693359375f), xc);
  r = fnma(n, fset(-2.12194440e-4f), r);
  VF p = fset(1.9875691500e-4f);
  p = fma(p, r, fset(1.3981999507e-3f));
  p = fma(p, r, fset(8.3334519073e-3f));
  p = fma(p, r, fset(4.1665795894e-2f));
  p = fma(p, r, fset(1.6666665459e-1f));
  p = fma(p, r, fset(5.0000001201e-1f));
  p = fma(p, r * r, r + fset(1.0f));
  const VF scale = fbits(isll<23>(ftoi(n) + iset(127)));
  return fselect_lt(x, lo, fzero(), p * scale);
}
inline float sexp(float x) {
  return flane(fexp(fset(x)), 0);
}
inline VF fsigmoid(VF x) {
  return fset(1.0f) / (fset(1.0f) + fexp(fzero() - x));
}
inline VF fsilu(VF x) {
  return x / (fset(1.0f) + fexp(fzero() - x));
}

// ---- element-wise ----

void rmsnorm_row(float* out, const float* x, const float* w, const float* z, int dim, float eps) {
  VF acc = fzero();
  int i = 0;
  for (; i + 16 <= dim; i += 16) {
    const VF v = fload(x + i);
    acc = fma(v, v, acc);
  }
  if (i < dim) {
    const VF v = floadn(x + i, dim - i);
    acc = fma(v, v, acc);
  }
  const float s = 1.0f / __builtin_sqrtf(fsum(acc) / static_cast<float>(dim) + eps);
  const VF vs = fset(s);
  for (i = 0; i < dim; i += 16) {
    const int n = dim - i < 16 ? dim - i : 16;
    VF y = floadn(x + i, n) * vs;
    if (w) y = floadn(w + i, n) * y;
    if (z) y = y * fsilu(floadn(z + i, n));
    fstoren(out + i, y, n);
  }
}

void swiglu(float* out, const float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const int m = n - i < 16 ? static_cast<int>(n - i) : 16;
    fstoren(out + i, fsilu(floadn(gate + i, m)) * floadn(up + i, m), m);
  }
}

void sigmoid_mul(float* x, const float* gate, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const int m = n - i < 16 ? static_cast<int>(n - i) : 16;
    fstoren(x + i, floadn(x + i, m) * fsigmoid(floadn(gate + i, m)), m);
  }
}

void add(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const int m = n - i < 16 ? static_cast<int>(n - i) : 16;
    fstoren(x + i, floadn(x + i, m) + floadn(y + i, m), m);
  }
}

// cs: cos[half] then sin[half]. Products and differences unfused, as the scalar reference.
void rope_head(float* v, const float* cs, int half) {
  for (int i = 0; i < half; i += 16) {
    const int m = half - i < 16 ? half - i : 16;
    const VF x1 = floadn(v + i, m), x2 = floadn(v + half + i, m);
    const VF c = floadn(cs + i, m), s = floadn(cs + half + i, m);
    fstoren(v + i, x1 * c - x2 * s, m);
    fstoren(v + half + i, x2 * c + x1 * s, m);
  }
}

// Depthwise causal conv + SiLU for channels [c0, c1): per channel s = sum_j w[c, j] * in[t + j]
// over the K-1 state inputs then the T new ones, j in order. wt: the weights transposed to
// [K, C]. Token by token over rows of x (sequential memory), the channels 16 at a time.
void conv1d_silu(float* out, const float* x, float* state, const float* wt, int T, int C, int K,
                 int c0, int c1) {
  const int hist = K - 1;
  auto in = [&](int i, int c, int n) {  // input i of the window: state rows, then x rows
    return i < hist ? floadn(state + static_cast<int64_t>(i) * C + c, n)
                    : floadn(x + static_cast<int64_t>(i - hist) * C + c, n);
  };
  for (int t = 0; t < T; ++t) {
    for (int c = c0; c < c1; c += 16) {
      const int n = c1 - c < 16 ? c1 - c : 16;
      VF s = floadn(wt + c, n) * in(t, c, n);
      for (int j = 1; j < K; ++j)
        s = fma(floadn(wt + static_cast<int64_t>(j) * C + c, n), in(t + j, c, n), s);
      fstoren(out + static_cast<int64_t>(t) * C + c, fsilu(s), n);
    }
  }
  // the state keeps the last K-1 inputs (rows read before they are overwritten: T + j > j)
  for (int j = 0; j < hist; ++j)
    for (int c = c0; c < c1; c += 16) {
      const int n = c1 - c < 16 ? c1 - c : 16;
      fstoren(state + static_cast<int64_t>(j) * C + c, in(T + j, c, n), n);
    }
}

// ---- attention ----

// Query rows of up to kMaxQ at a time share each key chunk load.
constexpr int kMaxQ = 8;

// Cache elements: f32, or IEEE half (KT = uint16_t) widened exactly to f32 in registers.
template <typename KT>
inline VF kvload(const KT* p) {
  if constexpr (sizeof(KT) == 2)
    return fload_f16(p);
  else
    return fload(p);
}
template <typename KT>
inline VF kvloadn(const KT* p, int n) {
  if constexpr (sizeof(KT) == 2)
    return fload_f16n(p, n);
  else
    return floadn(p, n);
}

// Scores of R query rows x C keys: s[i * ld + j] = (q_i . k_j) * scale, each a 16-lane dot as
// the float matmul (the tile shape changes which loads are shared, not the arithmetic of a score).
template <int R, int C, typename KT>
inline void score_tile(const float* const* qs, const KT* k, int64_t kv_stride, int hd, float scale,
                       float* s, int ld) {
  VF acc[R][C];
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < C; ++j) acc[i][j] = fzero();
  int d = 0;
  for (; d + 16 <= hd; d += 16) {
    VF kv[C];
    for (int j = 0; j < C; ++j) kv[j] = kvload(k + j * kv_stride + d);
    for (int i = 0; i < R; ++i) {
      const VF qv = fload(qs[i] + d);
      for (int j = 0; j < C; ++j) acc[i][j] = fma(qv, kv[j], acc[i][j]);
    }
  }
  if (d < hd) {
    VF kv[C];
    for (int j = 0; j < C; ++j) kv[j] = kvloadn(k + j * kv_stride + d, hd - d);
    for (int i = 0; i < R; ++i) {
      const VF qv = floadn(qs[i] + d, hd - d);
      for (int j = 0; j < C; ++j) acc[i][j] = fma(qv, kv[j], acc[i][j]);
    }
  }
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < C; ++j) s[i * ld + j] = fsum(acc[i][j]) * scale;
}

// Software prefetch of key rows [j, j + n) of two row sets (the next block's keys, this block's
// values) while the scores of keys j.. are computed. Cache rows of one KV head are kv_stride apart
// (a page or more), where the hardware prefetchers do not follow; interleaving the prefetches with
// the score arithmetic keeps the loads in flight instead of stalling on each row.
struct KvPrefetch {
  const char* a = nullptr;  // nullptr: none
  const char* b = nullptr;
};
template <typename KT>
inline void prefetch_kv_rows(const KvPrefetch& pf, int64_t j, int n, int64_t kv_stride, int hd) {
  if (!pf.a) return;
  const int64_t stride = kv_stride * static_cast<int64_t>(sizeof(KT));
  const int64_t bytes = static_cast<int64_t>(hd) * static_cast<int64_t>(sizeof(KT));
  for (int64_t r = j; r < j + n; ++r)
    for (int64_t off = 0; off < bytes; off += 64) {
      _mm_prefetch(pf.a + r * stride + off, _MM_HINT_T0);
      _mm_prefetch(pf.b + r * stride + off, _MM_HINT_T0);
    }
}

// Keys [0, nk) in tiles of kScoreKeys for R rows.
template <int R, typename KT, int C = kScoreKeys>
inline void score_keys(const float* const* qs, const KT* k, int64_t kv_stride, int nk, int hd,
                       float scale, float* s, int ld, KvPrefetch pf) {
  int j = 0;
  for (; j + C <= nk; j += C) {
    prefetch_kv_rows<KT>(pf, j, C, kv_stride, hd);
    score_tile<R, C>(qs, k + j * kv_stride, kv_stride, hd, scale, s + j, ld);
  }
  if constexpr (C > 1) {
    if (j < nk) {
      const int64_t skip = j * kv_stride * static_cast<int64_t>(sizeof(KT));
      if (pf.a) pf = {pf.a + skip, pf.b + skip};
      score_keys<R, KT, C - 1>(qs, k + j * kv_stride, kv_stride, nk - j, hd, scale, s + j, ld, pf);
    }
  }
}

// The first R rows also prefetch (pf); the others find the rows in cache.
template <typename KT, int R = kScoreRows>
inline void block_scores_n(int ni, const float* const* qs, const KT* k, int64_t kv_stride, int nk,
                           int hd, float scale, float* s, int ld, KvPrefetch pf) {
  if constexpr (R > 0) {
    if (ni >= R) {
      for (; ni >= R; ni -= R, qs += R, s += R * ld, pf = {})
        score_keys<R, KT>(qs, k, kv_stride, nk, hd, scale, s, ld, pf);
    }
    if (ni > 0) block_scores_n<KT, R - 1>(ni, qs, k, kv_stride, nk, hd, scale, s, ld, pf);
  }
}

// o_i[d0, d0 + 16 U) = o_i * corr_i + sum_j p_ij v_j over the row's nk_i keys in order, for NI
// rows (kFull: all 16 U dims exist; else `width` of them).
template <int NI, bool kFull, typename KT>
inline void block_pv(float* const* o, const float* corr, const float* const* p, const int* nk,
                     const KT* v, int64_t kv_stride, int width) {
  constexpr int U = kPvChunks;
  int wd[U];
  for (int u = 0; u < U; ++u) {
    const int rem = width - 16 * u;
    wd[u] = kFull ? 16 : rem <= 0 ? 0 : rem < 16 ? rem : 16;
  }
  VF acc[NI][U];
  for (int i = 0; i < NI; ++i)
    for (int u = 0; u < U; ++u)
      acc[i][u] =
          wd[u] > 0 ? (kFull ? fload(o[i] + 16 * u) : floadn(o[i] + 16 * u, wd[u])) * fset(corr[i])
                    : fzero();
  int n_all = nk[0];
  for (int i = 1; i < NI; ++i) n_all = nk[i] < n_all ? nk[i] : n_all;
  const int n_max = nk[NI - 1];
  for (int j = 0; j < n_max; ++j) {
    const KT* vj = v + j * kv_stride;
    VF vv[U];
    for (int u = 0; u < U; ++u)
      vv[u] = kFull ? kvload(vj + 16 * u) : wd[u] > 0 ? kvloadn(vj + 16 * u, wd[u]) : fzero();
    for (int i = 0; i < NI; ++i) {
      if (j >= n_all && j >= nk[i]) continue;  // past this row's last key
      const VF pij = fbcast(p[i] + j);
      for (int u = 0; u < U; ++u) acc[i][u] = fma(pij, vv[u], acc[i][u]);
    }
  }
  for (int i = 0; i < NI; ++i)
    for (int u = 0; u < U; ++u) {
      if (kFull)
        fstore(o[i] + 16 * u, acc[i][u]);
      else if (wd[u] > 0)
        fstoren(o[i] + 16 * u, acc[i][u], wd[u]);
    }
}

template <typename KT, int NI = kPvRows>
inline void block_pv_n(int ni, bool full, float* const* o, const float* corr, const float* const* p,
                       const int* nk, const KT* v, int64_t kv_stride, int width) {
  if constexpr (NI > 0) {
    if (ni != NI)
      block_pv_n<KT, NI - 1>(ni, full, o, corr, p, nk, v, kv_stride, width);
    else if (full)
      block_pv<NI, true>(o, corr, p, nk, v, kv_stride, width);
    else
      block_pv<NI, false>(o, corr, p, nk, v, kv_stride, width);
  }
}

// Causal attention of `tokens` consecutive query tokens x `group` query heads (one KV head): row
// (t, g) reads q + t * q_stride + g * hd and sees keys [0, n_keys0 + t). Keys come in blocks of
// kAttnKeyBlock from position 0; each row keeps its own running max m, sum l and output o and
// updates them block by block in the same way whatever the other rows in the tile, so a row's
// result does not depend on the tile (decode: one token; prefill: a tile of tokens).
template <typename KT>
void attention_tile_t(float* out, const float* q, int64_t q_stride, int group, int tokens,
                      const KT* k, const KT* v, int64_t kv_stride, int64_t n_keys0, int hd,
                      float scale, float* scratch) {
  constexpr int B = kAttnKeyBlock;
  const int nq = tokens * group;
  float* o = scratch;                           // [nq, hd]
  float* m = o + static_cast<size_t>(nq) * hd;  // [nq] running max
  float* l = m + nq;                            // [nq] running sum
  float* corrs = l + nq;                        // [nq] rescaling of o for the block
  float* s = corrs + nq;                        // [nq, B] scores, then weights, of the block
  auto qrow = [&](int r) { return q + (r / group) * q_stride + (r % group) * hd; };
  auto keys_of = [&](int r) { return n_keys0 + r / group; };
  for (int i = 0; i < nq; ++i) {
    m[i] = -__builtin_inff();
    l[i] = 0;
  }
  for (int64_t e = 0; e < static_cast<int64_t>(nq) * hd; ++e) o[e] = 0;
  const int64_t n_keys = n_keys0 + tokens - 1;  // of the last row
  for (int64_t kb = 0; kb < n_keys; kb += B) {
    // rows whose keys reach into this block (the first rows of the tile may end before it)
    int first = 0;
    while (keys_of(first) <= kb) ++first;
    // scores, kMaxQ rows at a time; past a row's last key they are -inf (weight exactly 0)
    for (int i0 = first; i0 < nq; i0 += kMaxQ) {
      const int ni = nq - i0 < kMaxQ ? nq - i0 : kMaxQ;
      const int64_t last = keys_of(i0 + ni - 1);
      const int nk = static_cast<int>(last - kb < B ? last - kb : B);
      const float* qs[kMaxQ];
      for (int i = 0; i < ni; ++i) qs[i] = qrow(i0 + i);
      KvPrefetch pf;
      if (i0 == first)
        pf = {reinterpret_cast<const char*>(k + (kb + B) * kv_stride),
              reinterpret_cast<const char*>(v + kb * kv_stride)};
      block_scores_n(ni, qs, k + kb * kv_stride, kv_stride, nk, hd, scale, s + i0 * B, B, pf);
      for (int i = 0; i < ni; ++i) {
        const int64_t own = keys_of(i0 + i) - kb;
        for (int64_t j = own < 0 ? 0 : own; j < B; ++j) s[(i0 + i) * B + j] = -__builtin_inff();
      }
    }
    // online softmax over the block
    for (int i = first; i < nq; ++i) {
      float* si = s + i * B;
      VF mx = fload(si);
      for (int j = 16; j < B; j += 16) mx = fmax(mx, fload(si + j));
      const float bm = fhmax(mx);
      const float m_new = m[i] > bm ? m[i] : bm;
      const float corr = sexp(m[i] - m_new);
      VF psum = fzero();
      for (int j = 0; j < B; j += 16) {
        const VF p = fexp(fload(si + j) - fset(m_new));
        fstore(si + j, p);
        psum = psum + p;
      }
      l[i] = l[i] * corr + fsum(psum);
      m[i] = m_new;
      corrs[i] = corr;
    }
    // o = o * corr + sum_j p_j v_j over the row's keys in order, kPvRows rows x 16 kPvChunks dims
    // at a time
    for (int i0 = first; i0 < nq; i0 += kPvRows) {
      const int ni = nq - i0 < kPvRows ? nq - i0 : kPvRows;
      int nk[kPvRows];
      const float* ps[kPvRows];
      for (int i = 0; i < ni; ++i) {
        const int64_t own = keys_of(i0 + i) - kb;
        nk[i] = static_cast<int>(own < B ? own : B);
        ps[i] = s + (i0 + i) * B;
      }
      constexpr int W = 16 * kPvChunks;
      for (int d0 = 0; d0 < hd; d0 += W) {
        float* os[kPvRows];
        for (int i = 0; i < ni; ++i) os[i] = o + (i0 + i) * hd + d0;
        block_pv_n(ni, d0 + W <= hd, os, corrs + i0, ps, nk, v + kb * kv_stride + d0, kv_stride,
                   hd - d0);
      }
    }
  }
  for (int i = 0; i < nq; ++i) {
    const VF inv = fset(1.0f / l[i]);
    float* orow = out + (i / group) * q_stride + (i % group) * hd;
    for (int d = 0; d < hd; d += 16) {
      const int w = hd - d < 16 ? hd - d : 16;
      fstoren(orow + d, floadn(o + i * hd + d, w) * inv, w);
    }
  }
}

void attention_tile(float* out, const float* q, int64_t q_stride, int group, int tokens,
                    const void* k, const void* v, bool f16, int64_t kv_stride, int64_t n_keys0,
                    int hd, float scale, float* scratch) {
  if (f16)
    attention_tile_t(out, q, q_stride, group, tokens, static_cast<const uint16_t*>(k),
                     static_cast<const uint16_t*>(v), kv_stride, n_keys0, hd, scale, scratch);
  else
    attention_tile_t(out, q, q_stride, group, tokens, static_cast<const float*>(k),
                     static_cast<const float*>(v), kv_stride, n_keys0, hd, scale, scratch);
}

// Rounds f32 to IEEE half (nearest even), as the KV cache stores it when it is f16.
void to_f16(uint16_t* dst, const float* src, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) fstore_f16(dst + i, fload(src + i));
  if (i < n) {
    alignas(64) uint16_t t[16];
    fstore_f16(t, floadn(src + i, static_cast<int>(n - i)));
    for (int64_t j = i; j < n; ++j) dst[j] = t[j - i];
  }
}

// ---- Gated DeltaNet recurrence ----
// S [dk, dv]: columns are independent, so dv is walked in slices of kGdnVecs x 16 columns whose
// state stays in L1 across all T tokens. Per token: S *= decay; m = S^T k; d = beta (v - m);
// S += k d^T; o = S^T q. One pass over the rows per token: the update of token t, its output, the
// decay of token t + 1 and its m are done row by row. The sums over the dk rows alternate between
// two accumulators (even and odd rows) added at the end, for instruction-level parallelism.
template <int V>
using Vecs = VF[V];
template <bool B>
struct Flag {
  static constexpr bool value = B;
};

// Loads / stores of the V vectors of one slice row: all 16 lanes (kFull) or w[u] lanes.
template <bool kFull>
inline VF load_part(const float* p, int w) {
  if constexpr (kFull) {
    (void)w;
    return fload(p);
  } else {
    return floadn(p, w);
  }
}
template <bool kFull>
inline void store_part(float* p, VF a, int w) {
  if constexpr (kFull) {
    (void)w;
    fstore(p, a);
  } else {
    fstoren(p, a, w);
  }
}

// One slice of kGdnVecs x 16 columns starting at j0 (kFull: all of them exist).
template <bool kFull>
void gdn_slice(float* S, const float* q, const float* k, const float* v, const float* decay,
               const float* beta, int T, int dk, int dv, int j0, float* out, int64_t out_stride) {
  constexpr int V = kGdnVecs;
  int w[V];
  int nv = 0;  // vectors in this slice
  for (int u = 0; u < V; ++u) {
    const int rem = dv - (j0 + 16 * u);
    w[u] = rem <= 0 ? 0 : rem < 16 ? rem : 16;
    nv += w[u] > 0;
  }
  if (kFull) nv = V;
  auto row = [&](int i) { return S + static_cast<int64_t>(i) * dv + j0; };
  // m of token 0: S *= decay_0, m = S^T k_0
  VF m0[V], m1[V];
  for (int u = 0; u < V; ++u) m0[u] = m1[u] = fzero();
  auto decay_row = [&](int i, VF dec, VF ki, Vecs<V>& m) {
    for (int u = 0; u < (kFull ? V : nv); ++u) {
      const VF sv = load_part<kFull>(row(i) + 16 * u, w[u]) * dec;
      store_part<kFull>(row(i) + 16 * u, sv, w[u]);
      m[u] = fma(sv, ki, m[u]);
    }
  };
  {
    const VF dec = fset(decay[0]);
    int i = 0;
    for (; i + 1 < dk; i += 2) {
      decay_row(i, dec, fset(k[i]), m0);
      decay_row(i + 1, dec, fset(k[i + 1]), m1);
    }
    if (i < dk) decay_row(i, dec, fset(k[i]), m0);
  }
  for (int t = 0; t < T; ++t) {
    const float* kt = k + static_cast<int64_t>(t) * dk;
    const float* qt = q + static_cast<int64_t>(t) * dk;
    const bool next = t + 1 < T;
    const float* kn = next ? kt + dk : kt;
    const VF bt = fset(beta[t]), dec = fset(next ? decay[t + 1] : 1.0f);
    VF dd[V];
    for (int u = 0; u < V; ++u) {
      dd[u] = u < nv
                  ? bt * (load_part<kFull>(v + static_cast<int64_t>(t) * dv + j0 + 16 * u, w[u]) -
                          (m0[u] + m1[u]))
                  : fzero();
      m0[u] = m1[u] = fzero();
    }
    VF o0[V], o1[V];
    for (int u = 0; u < V; ++u) o0[u] = o1[u] = fzero();
    // row i: S += k d^T; o += S q_i; then (when a token follows) S *= its decay, m += S k_i
    auto update_row = [&](int i, Vecs<V>& o, Vecs<V>& m, auto has_next) {
      const VF ki = fset(kt[i]), qi = fset(qt[i]), kni = fset(kn[i]);
      for (int u = 0; u < (kFull ? V : nv); ++u) {
        const VF sv = fma(ki, dd[u], load_part<kFull>(row(i) + 16 * u, w[u]));
        o[u] = fma(sv, qi, o[u]);
        if constexpr (decltype(has_next)::value) {
          const VF sn = sv * dec;
          store_part<kFull>(row(i) + 16 * u, sn, w[u]);
          m[u] = fma(sn, kni, m[u]);
        } else {
          store_part<kFull>(row(i) + 16 * u, sv, w[u]);
        }
      }
    };
    auto all_rows = [&](auto has_next) {
      int i = 0;
      for (; i + 1 < dk; i += 2) {
        update_row(i, o0, m0, has_next);
        update_row(i + 1, o1, m1, has_next);
      }
      if (i < dk) update_row(i, o0, m0, has_next);
    };
    if (next)
      all_rows(Flag<true>{});
    else
      all_rows(Flag<false>{});
    float* ot = out + static_cast<int64_t>(t) * out_stride + j0;
    for (int u = 0; u < (kFull ? V : nv); ++u) store_part<kFull>(ot + 16 * u, o0[u] + o1[u], w[u]);
  }
}

void gdn_head(float* S, const float* q, const float* k, const float* v, const float* decay,
              const float* beta, int T, int dk, int dv, float* out, int64_t out_stride) {
  constexpr int W = 16 * kGdnVecs;
  for (int j0 = 0; j0 < dv; j0 += W) {
    if (j0 + W <= dv)
      gdn_slice<true>(S, q, k, v, decay, beta, T, dk, dv, j0, out, out_stride);
    else
      gdn_slice<false>(S, q, k, v, decay, beta, T, dk, dv, j0, out, out_stride);
  }
}

}  // namespace
}  // namespace flashrt::cpu

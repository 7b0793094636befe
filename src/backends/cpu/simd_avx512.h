// 16-lane f32 / i32 vectors on AVX-512 (F, BW, VL; VNNI when FLASHRT_CPU_VNNI is 1). The kernels
// in *_impl.h are written against this interface; simd_avx2.h implements the same operations with
// pairs of 8-lane registers and gives the same bits. Internal linkage throughout: see isa.h.
#pragma once
// GCC 12 reports the _mm512_undefined_*() operands inside its own AVX-512 intrinsics as
// uninitialized once they are inlined (fixed in GCC 13); nothing here reads an undefined value.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#ifndef FLASHRT_CPU_VNNI
#define FLASHRT_CPU_VNNI 0
#endif

// The *_impl.h kernels check that one of the vector interfaces came first.
#define FLASHRT_CPU_SIMD 1

namespace flashrt::cpu {
namespace {

constexpr int kLanes = 16;
constexpr int kPvRows = 8, kPvChunks = 2;      // attention P V tiles
constexpr int kScoreRows = 4, kScoreKeys = 6;  // attention score tiles
constexpr int kGdnVecs = 4;                    // Gated DeltaNet columns per pass: kGdnVecs x 16
constexpr bool kVnni = FLASHRT_CPU_VNNI != 0;
// Register budget: matmul tile shapes (row vectors x activation rows) that fit 32 registers.
constexpr int kQRows = 2, kQCols = 6;  // int8 GEMM: 2 x 16 rows, 6 activation rows
constexpr int kKCols = 4;              // K-quants keep 3 vectors per tile element
constexpr int kFRows = 4, kFCols = 6;  // float GEMM: 4 weight rows, 6 activation rows

struct VF {
  __m512 v;
};
struct VI {
  __m512i v;
};

inline __mmask16 lane_mask(int n) {
  return static_cast<__mmask16>((1u << n) - 1u);
}

// ---- f32 ----
inline VF fzero() {
  return {_mm512_setzero_ps()};
}
inline VF fset(float a) {
  return {_mm512_set1_ps(a)};
}
inline VF fload(const float* p) {
  return {_mm512_loadu_ps(p)};
}
// The first n (0..16) lanes from p, the rest zero.
inline VF floadn(const float* p, int n) {
  return {_mm512_maskz_loadu_ps(lane_mask(n), p)};
}
inline void fstore(float* p, VF a) {
  _mm512_storeu_ps(p, a.v);
}
inline void fstoren(float* p, VF a, int n) {
  _mm512_mask_storeu_ps(p, lane_mask(n), a.v);
}
inline VF fbcast(const float* p) {
  return {_mm512_set1_ps(*p)};
}
inline VF operator+(VF a, VF b) {
  return {_mm512_add_ps(a.v, b.v)};
}
inline VF operator-(VF a, VF b) {
  return {_mm512_sub_ps(a.v, b.v)};
}
inline VF operator*(VF a, VF b) {
  return {_mm512_mul_ps(a.v, b.v)};
}
inline VF operator/(VF a, VF b) {
  return {_mm512_div_ps(a.v, b.v)};
}
inline VF fmax(VF a, VF b) {
  return {_mm512_max_ps(a.v, b.v)};
}
inline VF fmin(VF a, VF b) {
  return {_mm512_min_ps(a.v, b.v)};
}
inline VF fabs(VF a) {
  return {_mm512_abs_ps(a.v)};
}
inline VF fma(VF a, VF b, VF c) {
  return {_mm512_fmadd_ps(a.v, b.v, c.v)};
}  // a * b + c
inline VF fnma(VF a, VF b, VF c) {
  return {_mm512_fnmadd_ps(a.v, b.v, c.v)};
}  // c - a * b
inline VF fround(VF a) {
  return {_mm512_roundscale_ps(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)};
}
// a where m (a < b lane-wise) else c
inline VF fselect_lt(VF a, VF b, VF yes, VF no) {
  return {_mm512_mask_blend_ps(_mm512_cmp_ps_mask(a.v, b.v, _CMP_LT_OQ), no.v, yes.v)};
}
// Sum in a fixed tree: lanes i and i + 8, then i + 4, i + 2, i + 1.
inline float fsum(VF a) {
  const __m256 s8 =
      _mm256_add_ps(_mm512_castps512_ps256(a.v),
                    _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a.v), 1)));
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
}
inline float fhmax(VF a) {
  return _mm512_reduce_max_ps(a.v);
}
inline float flane(VF a, int i) {
  alignas(64) float t[16];
  _mm512_store_ps(t, a.v);
  return t[i];
}

// bf16 / f16 to f32 (exact).
inline VF fload_bf16(const uint16_t* p) {
  const __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  return {_mm512_castsi512_ps(_mm512_slli_epi32(w, 16))};
}
inline VF fload_bf16n(const uint16_t* p, int n) {
  const __m512i w = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(lane_mask(n), p));
  return {_mm512_castsi512_ps(_mm512_slli_epi32(w, 16))};
}
inline VF fload_f16(const uint16_t* p) {
  return {_mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)))};
}
inline VF fload_f16n(const uint16_t* p, int n) {
  return {_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(lane_mask(n), p))};
}
inline void fstore_f16(uint16_t* p, VF a) {  // round to nearest even
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p),
                      _mm512_cvtps_ph(a.v, _MM_FROUND_TO_NEAREST_INT));
}

// ---- i32 / i8 ----
inline VI izero() {
  return {_mm512_setzero_si512()};
}
inline VI iset(int32_t a) {
  return {_mm512_set1_epi32(a)};
}
inline VI iload(const void* p) {
  return {_mm512_loadu_si512(p)};
}
inline void istore(void* p, VI a) {
  _mm512_storeu_si512(p, a.v);
}
// The 4 bytes at p in every lane.
inline VI ibcast4(const void* p) {
  int32_t v;
  __builtin_memcpy(&v, p, 4);
  return {_mm512_set1_epi32(v)};
}
inline VI operator+(VI a, VI b) {
  return {_mm512_add_epi32(a.v, b.v)};
}
inline VI operator-(VI a, VI b) {
  return {_mm512_sub_epi32(a.v, b.v)};
}
inline VI operator&(VI a, VI b) {
  return {_mm512_and_si512(a.v, b.v)};
}
inline VI operator|(VI a, VI b) {
  return {_mm512_or_si512(a.v, b.v)};
}
inline VI operator^(VI a, VI b) {
  return {_mm512_xor_si512(a.v, b.v)};
}
inline VI imul(VI a, VI b) {
  return {_mm512_mullo_epi32(a.v, b.v)};
}
template <int N>
inline VI isrl(VI a) {
  return {_mm512_srli_epi32(a.v, N)};
}
template <int N>
inline VI isll(VI a) {
  return {_mm512_slli_epi32(a.v, N)};
}
inline VI isrlv(VI a, int n) {
  return {_mm512_srl_epi32(a.v, _mm_cvtsi32_si128(n))};
}
inline VI isllv(VI a, int n) {
  return {_mm512_sll_epi32(a.v, _mm_cvtsi32_si128(n))};
}
inline VI isra24(VI a) {
  return {_mm512_srai_epi32(a.v, 24)};
}
inline VF fbits(VI a) {
  return {_mm512_castsi512_ps(a.v)};
}
// The 16 lanes (each in -128..127) as bytes.
inline void istore_i8(int8_t* p, VI a) {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm512_cvtepi32_epi8(a.v));
}
inline int32_t ihadd(VI a) {
  return _mm512_reduce_add_epi32(a.v);
}
inline VF itof(VI a) {
  return {_mm512_cvtepi32_ps(a.v)};
}
// f32 -> i32, round to nearest even
inline VI ftoi(VF a) {
  return {_mm512_cvtps_epi32(a.v)};
}

// acc + sum of the 4 products u[j] * s[j] in each lane, u unsigned bytes, s signed bytes. Exact
// (no saturation) for u <= 129 without VNNI, any u with it.
inline VI dot_u8s8(VI acc, VI u, VI s) {
#if FLASHRT_CPU_VNNI
  return {_mm512_dpbusd_epi32(acc.v, u.v, s.v)};
#else
  const __m512i p16 = _mm512_maddubs_epi16(u.v, s.v);
  return {_mm512_add_epi32(acc.v, _mm512_madd_epi16(p16, _mm512_set1_epi16(1)))};
#endif
}
// acc + sum of the 4 products a[j] * b[j], both signed bytes with |a|, |b| <= 127 or one of them
// never -128 (exact).
inline VI dot_s8s8(VI acc, VI a, VI b) {
  const __m512i abs_b = _mm512_abs_epi8(b.v);
  // sign(a, b): a where b > 0, -a where b < 0, 0 where b == 0
  const __mmask64 neg = _mm512_movepi8_mask(b.v);
  const __mmask64 zero = _mm512_testn_epi8_mask(b.v, b.v);
  __m512i sa = _mm512_mask_sub_epi8(a.v, neg, _mm512_setzero_si512(), a.v);
  sa = _mm512_maskz_mov_epi8(~zero, sa);
  return dot_u8s8(acc, {abs_b}, {sa});
}
// acc + a[0] * b[0] + a[1] * b[1] per lane over int16 pairs (exact).
inline VI dot_s16(VI acc, VI a, VI b) {
#if FLASHRT_CPU_VNNI
  return {_mm512_dpwssd_epi32(acc.v, a.v, b.v)};
#else
  return {_mm512_add_epi32(acc.v, _mm512_madd_epi16(a.v, b.v))};
#endif
}

// Lane r = r (the row index of a 16-row group).
inline VI iota() {
  return {_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)};
}

// 16 rows of 8 dwords (32 bytes at p + r * stride) to 8 vectors, vector q holding dword q of row r
// in lane r. The rows come in with broadcast loads (no shuffle port), then a 3-level transpose.
inline void transpose_16x8(const uint8_t* p, size_t stride, VI out[8]) {
  __m512i a[8];
  for (int i = 0; i < 8; ++i) {
    const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i * stride));
    const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + (i + 8) * stride));
    a[i] = _mm512_mask_broadcast_i64x4(_mm512_castsi256_si512(lo), 0xf0, hi);
  }
  __m512i t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm512_unpacklo_epi32(a[2 * i], a[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(a[2 * i], a[2 * i + 1]);
  }
  for (int h = 0; h < 2; ++h) {  // rows 0-3 (h = 0) and 4-7 of each half
    const __m512i* s = t + 4 * h;
    u[4 * h + 0] = _mm512_unpacklo_epi64(s[0], s[2]);
    u[4 * h + 1] = _mm512_unpackhi_epi64(s[0], s[2]);
    u[4 * h + 2] = _mm512_unpacklo_epi64(s[1], s[3]);
    u[4 * h + 3] = _mm512_unpackhi_epi64(s[1], s[3]);
  }
  // u[j] (j < 4), per 128-bit lane L: rows 0-3 (u[j]) / 4-7 (u[4 + j]) of dword j (L even) or
  // j + 4 (L odd), L < 2 for rows 0-7 and L >= 2 for rows 8-15.
  const __m512i lo = _mm512_setr_epi64(0, 1, 8, 9, 4, 5, 12, 13);
  const __m512i hi = _mm512_setr_epi64(2, 3, 10, 11, 6, 7, 14, 15);
  for (int j = 0; j < 4; ++j) {
    out[j].v = _mm512_permutex2var_epi64(u[j], lo, u[4 + j]);
    out[j + 4].v = _mm512_permutex2var_epi64(u[j], hi, u[4 + j]);
  }
}

// 16 rows of 4 dwords (16 bytes at p + r * stride) to 4 vectors (dword q of row r in lane r).
inline void transpose_16x4(const uint8_t* p, size_t stride, VI out[4]) {
  __m512i a[4];
  for (int i = 0; i < 4; ++i) {
    auto row = [&](int r) {
      return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + r * stride));
    };
    __m512i v = _mm512_broadcast_i32x4(row(i));
    v = _mm512_mask_broadcast_i32x4(v, 0x00f0, row(i + 4));
    v = _mm512_mask_broadcast_i32x4(v, 0x0f00, row(i + 8));
    a[i] = _mm512_mask_broadcast_i32x4(v, 0xf000, row(i + 12));
  }
  const __m512i t0 = _mm512_unpacklo_epi32(a[0], a[1]), t1 = _mm512_unpackhi_epi32(a[0], a[1]);
  const __m512i t2 = _mm512_unpacklo_epi32(a[2], a[3]), t3 = _mm512_unpackhi_epi32(a[2], a[3]);
  out[0].v = _mm512_unpacklo_epi64(t0, t2);
  out[1].v = _mm512_unpackhi_epi64(t0, t2);
  out[2].v = _mm512_unpacklo_epi64(t1, t3);
  out[3].v = _mm512_unpackhi_epi64(t1, t3);
}

// The f16 in the low half of each lane, as f32.
inline VF f16_lo(VI a) {
  return {_mm512_cvtph_ps(_mm512_cvtepi32_epi16(a.v))};
}

// The f16 at base + offs[r] for the 16 lanes r, as f32. Reads the 4 bytes from there (kHigh
// false) or the 4 bytes ending there + 2 (kHigh true, for a scale at the end of a block).
template <bool kHigh>
inline VF gather_f16(const uint8_t* base, VI offs) {
  __m512i w = _mm512_i32gather_epi32(offs.v, kHigh ? base - 2 : base, 1);
  if (kHigh) w = _mm512_srli_epi32(w, 16);
  return {_mm512_cvtph_ps(_mm512_cvtepi32_epi16(w))};
}

}  // namespace
}  // namespace flashrt::cpu

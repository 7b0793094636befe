// The 16-lane vector interface of simd_avx512.h on AVX2 + FMA + F16C, each vector a pair of 8-lane
// registers (lanes 0-7, 8-15). Every operation gives the same bits as its AVX-512 counterpart,
// reductions included, so the two kernel tables agree exactly. Internal linkage: see isa.h.
#pragma once
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

// The *_impl.h kernels check that one of the vector interfaces came first.
#define FLASHRT_CPU_SIMD 1

namespace flashrt::cpu {
namespace {

constexpr int kLanes = 16;
constexpr int kPvRows = 2, kPvChunks = 2;
constexpr int kScoreRows = 2, kScoreKeys = 2;
constexpr int kGdnVecs = 2;  // Gated DeltaNet columns per pass: kGdnVecs x 16
constexpr bool kVnni = false;
constexpr int kQRows = 1, kQCols = 2;  // 16 x 256-bit registers
constexpr int kKCols = 1;
constexpr int kFRows = 2, kFCols = 2;

struct VF {
  __m256 lo, hi;
};
struct VI {
  __m256i lo, hi;
};

alignas(32) const int32_t kMaskTable[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
// Lanes [0, n) set, n clamped to 0..8.
inline __m256i half_mask(int n) {
  n = n < 0 ? 0 : n > 8 ? 8 : n;
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kMaskTable + 8 - n));
}

// ---- f32 ----
inline VF fzero() {
  return {_mm256_setzero_ps(), _mm256_setzero_ps()};
}
inline VF fset(float a) {
  return {_mm256_set1_ps(a), _mm256_set1_ps(a)};
}
inline VF fload(const float* p) {
  return {_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)};
}
inline VF floadn(const float* p, int n) {
  return {_mm256_maskload_ps(p, half_mask(n)), _mm256_maskload_ps(p + 8, half_mask(n - 8))};
}
inline void fstore(float* p, VF a) {
  _mm256_storeu_ps(p, a.lo);
  _mm256_storeu_ps(p + 8, a.hi);
}
inline void fstoren(float* p, VF a, int n) {
  _mm256_maskstore_ps(p, half_mask(n), a.lo);
  _mm256_maskstore_ps(p + 8, half_mask(n - 8), a.hi);
}
inline VF fbcast(const float* p) {
  return {_mm256_broadcast_ss(p), _mm256_broadcast_ss(p)};
}
inline VF operator+(VF a, VF b) {
  return {_mm256_add_ps(a.lo, b.lo), _mm256_add_ps(a.hi, b.hi)};
}
inline VF operator-(VF a, VF b) {
  return {_mm256_sub_ps(a.lo, b.lo), _mm256_sub_ps(a.hi, b.hi)};
}
inline VF operator*(VF a, VF b) {
  return {_mm256_mul_ps(a.lo, b.lo), _mm256_mul_ps(a.hi, b.hi)};
}
inline VF operator/(VF a, VF b) {
  return {_mm256_div_ps(a.lo, b.lo), _mm256_div_ps(a.hi, b.hi)};
}
inline VF fmax(VF a, VF b) {
  return {_mm256_max_ps(a.lo, b.lo), _mm256_max_ps(a.hi, b.hi)};
}
inline VF fmin(VF a, VF b) {
  return {_mm256_min_ps(a.lo, b.lo), _mm256_min_ps(a.hi, b.hi)};
}
inline VF fabs(VF a) {
  const __m256 m = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  return {_mm256_and_ps(a.lo, m), _mm256_and_ps(a.hi, m)};
}
inline VF fma(VF a, VF b, VF c) {
  return {_mm256_fmadd_ps(a.lo, b.lo, c.lo), _mm256_fmadd_ps(a.hi, b.hi, c.hi)};
}
inline VF fnma(VF a, VF b, VF c) {
  return {_mm256_fnmadd_ps(a.lo, b.lo, c.lo), _mm256_fnmadd_ps(a.hi, b.hi, c.hi)};
}
inline VF fround(VF a) {
  constexpr int kMode = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
  return {_mm256_round_ps(a.lo, kMode), _mm256_round_ps(a.hi, kMode)};
}
inline VF fselect_lt(VF a, VF b, VF yes, VF no) {
  return {_mm256_blendv_ps(no.lo, yes.lo, _mm256_cmp_ps(a.lo, b.lo, _CMP_LT_OQ)),
          _mm256_blendv_ps(no.hi, yes.hi, _mm256_cmp_ps(a.hi, b.hi, _CMP_LT_OQ))};
}
// The same tree as the AVX-512 fsum: lanes i and i + 8 first.
inline float fsum(VF a) {
  const __m256 s8 = _mm256_add_ps(a.lo, a.hi);
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
}
inline float fhmax(VF a) {
  const __m256 m8 = _mm256_max_ps(a.lo, a.hi);
  __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m8), _mm256_extractf128_ps(m8, 1));
  m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
  return _mm_cvtss_f32(_mm_max_ss(m4, _mm_movehdup_ps(m4)));
}
inline float flane(VF a, int i) {
  alignas(32) float t[16];
  _mm256_store_ps(t, a.lo);
  _mm256_store_ps(t + 8, a.hi);
  return t[i];
}

inline __m256 bf16x8(__m128i h) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
inline VF fload_bf16(const uint16_t* p) {
  return {bf16x8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))),
          bf16x8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 8)))};
}
inline VF fload_bf16n(const uint16_t* p, int n) {
  alignas(16) uint16_t t[16] = {};
  for (int i = 0; i < n; ++i) t[i] = p[i];
  return fload_bf16(t);
}
inline VF fload_f16(const uint16_t* p) {
  return {_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))),
          _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 8)))};
}
inline VF fload_f16n(const uint16_t* p, int n) {
  alignas(16) uint16_t t[16] = {};
  for (int i = 0; i < n; ++i) t[i] = p[i];
  return fload_f16(t);
}
inline void fstore_f16(uint16_t* p, VF a) {  // round to nearest even
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_cvtps_ph(a.lo, _MM_FROUND_TO_NEAREST_INT));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p + 8),
                   _mm256_cvtps_ph(a.hi, _MM_FROUND_TO_NEAREST_INT));
}

// ---- i32 / i8 ----
inline VI izero() {
  return {_mm256_setzero_si256(), _mm256_setzero_si256()};
}
inline VI iset(int32_t a) {
  return {_mm256_set1_epi32(a), _mm256_set1_epi32(a)};
}
inline VI iload(const void* p) {
  const auto* q = static_cast<const __m256i*>(p);
  return {_mm256_loadu_si256(q), _mm256_loadu_si256(q + 1)};
}
inline void istore(void* p, VI a) {
  auto* q = static_cast<__m256i*>(p);
  _mm256_storeu_si256(q, a.lo);
  _mm256_storeu_si256(q + 1, a.hi);
}
inline VI ibcast4(const void* p) {
  int32_t v;
  __builtin_memcpy(&v, p, 4);
  return {_mm256_set1_epi32(v), _mm256_set1_epi32(v)};
}
inline VI operator+(VI a, VI b) {
  return {_mm256_add_epi32(a.lo, b.lo), _mm256_add_epi32(a.hi, b.hi)};
}
inline VI operator-(VI a, VI b) {
  return {_mm256_sub_epi32(a.lo, b.lo), _mm256_sub_epi32(a.hi, b.hi)};
}
inline VI operator&(VI a, VI b) {
  return {_mm256_and_si256(a.lo, b.lo), _mm256_and_si256(a.hi, b.hi)};
}
inline VI operator|(VI a, VI b) {
  return {_mm256_or_si256(a.lo, b.lo), _mm256_or_si256(a.hi, b.hi)};
}
inline VI operator^(VI a, VI b) {
  return {_mm256_xor_si256(a.lo, b.lo), _mm256_xor_si256(a.hi, b.hi)};
}
inline VI imul(VI a, VI b) {
  return {_mm256_mullo_epi32(a.lo, b.lo), _mm256_mullo_epi32(a.hi, b.hi)};
}
template <int N>
inline VI isrl(VI a) {
  return {_mm256_srli_epi32(a.lo, N), _mm256_srli_epi32(a.hi, N)};
}
template <int N>
inline VI isll(VI a) {
  return {_mm256_slli_epi32(a.lo, N), _mm256_slli_epi32(a.hi, N)};
}
inline VI isrlv(VI a, int n) {
  const __m128i c = _mm_cvtsi32_si128(n);
  return {_mm256_srl_epi32(a.lo, c), _mm256_srl_epi32(a.hi, c)};
}
inline VI isllv(VI a, int n) {
  const __m128i c = _mm_cvtsi32_si128(n);
  return {_mm256_sll_epi32(a.lo, c), _mm256_sll_epi32(a.hi, c)};
}
inline VI isra24(VI a) {
  return {_mm256_srai_epi32(a.lo, 24), _mm256_srai_epi32(a.hi, 24)};
}
inline VF fbits(VI a) {
  return {_mm256_castsi256_ps(a.lo), _mm256_castsi256_ps(a.hi)};
}
inline void istore_i8(int8_t* p, VI a) {
  const __m256i w16 =
      _mm256_permute4x64_epi64(_mm256_packs_epi32(a.lo, a.hi), 0xd8);  // 16 x i16 in order
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p),
                   _mm_packs_epi16(_mm256_castsi256_si128(w16), _mm256_extracti128_si256(w16, 1)));
}
inline int32_t ihadd(VI a) {
  const __m256i s8 = _mm256_add_epi32(a.lo, a.hi);
  __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s8), _mm256_extracti128_si256(s8, 1));
  s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
  s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
  return _mm_cvtsi128_si32(s4);
}
inline VF itof(VI a) {
  return {_mm256_cvtepi32_ps(a.lo), _mm256_cvtepi32_ps(a.hi)};
}
inline VI ftoi(VF a) {
  return {_mm256_cvtps_epi32(a.lo), _mm256_cvtps_epi32(a.hi)};
}

inline __m256i dot4(__m256i acc, __m256i u, __m256i s) {
  return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
}
// Exact for u <= 129 (the pairs summed in 16 bits must not saturate).
inline VI dot_u8s8(VI acc, VI u, VI s) {
  return {dot4(acc.lo, u.lo, s.lo), dot4(acc.hi, u.hi, s.hi)};
}
inline VI dot_s8s8(VI acc, VI a, VI b) {
  return {dot4(acc.lo, _mm256_abs_epi8(b.lo), _mm256_sign_epi8(a.lo, b.lo)),
          dot4(acc.hi, _mm256_abs_epi8(b.hi), _mm256_sign_epi8(a.hi, b.hi))};
}
inline VI dot_s16(VI acc, VI a, VI b) {
  return {_mm256_add_epi32(acc.lo, _mm256_madd_epi16(a.lo, b.lo)),
          _mm256_add_epi32(acc.hi, _mm256_madd_epi16(a.hi, b.hi))};
}

inline VI iota() {
  return {_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
          _mm256_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15)};
}

// 8 rows of 8 dwords (p + r * stride) to 8 registers (dword q of row r in lane r of out[q]).
inline void transpose_8x8(const uint8_t* p, size_t stride, __m256i out[8]) {
  __m256i a[8], t[8], u[8];
  for (int i = 0; i < 8; ++i)
    a[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i * stride));
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_epi32(a[2 * i], a[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_epi32(a[2 * i], a[2 * i + 1]);
  }
  for (int h = 0; h < 2; ++h) {
    const __m256i* s = t + 4 * h;
    u[4 * h + 0] = _mm256_unpacklo_epi64(s[0], s[2]);
    u[4 * h + 1] = _mm256_unpackhi_epi64(s[0], s[2]);
    u[4 * h + 2] = _mm256_unpacklo_epi64(s[1], s[3]);
    u[4 * h + 3] = _mm256_unpackhi_epi64(s[1], s[3]);
  }
  for (int j = 0; j < 4; ++j) {
    out[j] = _mm256_permute2x128_si256(u[j], u[4 + j], 0x20);
    out[j + 4] = _mm256_permute2x128_si256(u[j], u[4 + j], 0x31);
  }
}
inline void transpose_16x8(const uint8_t* p, size_t stride, VI out[8]) {
  __m256i lo[8], hi[8];
  transpose_8x8(p, stride, lo);
  transpose_8x8(p + 8 * stride, stride, hi);
  for (int q = 0; q < 8; ++q) out[q] = {lo[q], hi[q]};
}

// 8 rows of 4 dwords to 4 registers.
inline void transpose_8x4(const uint8_t* p, size_t stride, __m256i out[4]) {
  __m256i a[4];
  for (int i = 0; i < 4; ++i)
    a[i] = _mm256_inserti128_si256(
        _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i * stride))),
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + (i + 4) * stride)), 1);
  const __m256i t0 = _mm256_unpacklo_epi32(a[0], a[1]), t1 = _mm256_unpackhi_epi32(a[0], a[1]);
  const __m256i t2 = _mm256_unpacklo_epi32(a[2], a[3]), t3 = _mm256_unpackhi_epi32(a[2], a[3]);
  out[0] = _mm256_unpacklo_epi64(t0, t2);
  out[1] = _mm256_unpackhi_epi64(t0, t2);
  out[2] = _mm256_unpacklo_epi64(t1, t3);
  out[3] = _mm256_unpackhi_epi64(t1, t3);
}
inline void transpose_16x4(const uint8_t* p, size_t stride, VI out[4]) {
  __m256i lo[4], hi[4];
  transpose_8x4(p, stride, lo);
  transpose_8x4(p + 8 * stride, stride, hi);
  for (int q = 0; q < 4; ++q) out[q] = {lo[q], hi[q]};
}

inline __m256 f16x8_gathered(__m256i w) {
  w = _mm256_and_si256(w, _mm256_set1_epi32(0xffff));
  return _mm256_cvtph_ps(
      _mm_packus_epi32(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1)));
}
inline VF f16_lo(VI a) {
  return {f16x8_gathered(a.lo), f16x8_gathered(a.hi)};
}

template <bool kHigh>
inline VF gather_f16(const uint8_t* base, VI offs) {
  const auto* b = reinterpret_cast<const int*>(kHigh ? base - 2 : base);
  __m256i lo = _mm256_i32gather_epi32(b, offs.lo, 1);
  __m256i hi = _mm256_i32gather_epi32(b, offs.hi, 1);
  if (kHigh) {
    lo = _mm256_srli_epi32(lo, 16);
    hi = _mm256_srli_epi32(hi, 16);
  }
  return {f16x8_gathered(lo), f16x8_gathered(hi)};
}

}  // namespace
}  // namespace flashrt::cpu

// llama.cpp's quantized block layouts and the reference (scalar) conversions to and from f32.
// The CPU backend's fast kernels are checked against these.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/dtype.h"

namespace flashrt {

constexpr int kQK8_0 = 32;
struct BlockQ8_0 {
  uint16_t d;  // f16 scale
  int8_t qs[kQK8_0];
};
static_assert(sizeof(BlockQ8_0) == 34);

constexpr int kQK4_0 = 32;
struct BlockQ4_0 {
  uint16_t d;              // f16 scale
  uint8_t qs[kQK4_0 / 2];  // element j in low nibble of byte j, element j+16 in the high nibble
};
static_assert(sizeof(BlockQ4_0) == 18);

// K-quants: super-blocks of 256 values.
constexpr int kQK_K = 256;

// 8 sub-blocks of 32 values; value = d * sc[j] * q - dmin * m[j] with q in 0..15 and 6-bit sc, m
// packed into `scales` (see q4_k_scale_min). Sub-blocks 2g and 2g+1 share qs[32g, 32g + 32): the
// low nibble holds element 64g + l, the high nibble element 64g + 32 + l.
struct BlockQ4_K {
  uint16_t d;     // f16 scale of the sub-block scales
  uint16_t dmin;  // f16 scale of the sub-block mins
  uint8_t scales[12];
  uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockQ4_K) == 144);

// 16 sub-blocks of 16 values; value = d * scales[j] * (q - 32) with q in 0..63 split into 4 low
// bits (ql) and 2 high bits (qh). In each half of 128 values, element l + 32 * s (l < 32, s < 4)
// takes its low bits from ql[l + 32 * (s & 1)] (low nibble for s < 2, high for s >= 2) and its
// high bits from bits 2s, 2s + 1 of qh[l].
struct BlockQ6_K {
  uint8_t ql[kQK_K / 2];
  uint8_t qh[kQK_K / 4];
  int8_t scales[kQK_K / 16];
  uint16_t d;  // f16
};
static_assert(sizeof(BlockQ6_K) == 210);

// The 6-bit scale and min of sub-block j (0..7) of a Q4_K block: j < 4 sit in the low 6 bits of
// bytes j and j + 4; j >= 4 take their low 4 bits from byte j + 4 and their top 2 bits from the
// spare top bits of bytes j - 4 and j.
inline void q4_k_scale_min(const uint8_t* scales, int j, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = scales[j] & 63;
    *m = scales[j + 4] & 63;
  } else {
    *sc = static_cast<uint8_t>((scales[j + 4] & 0xf) | ((scales[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((scales[j + 4] >> 4) | ((scales[j] >> 6) << 4));
  }
}

// Converts `n` elements of a row stored as `t` to f32.
void dequantize_row(DType t, const void* src, float* dst, int64_t n);
// Converts `n` f32 values to dtype `t` (f32/f16/bf16 or a quantized type); n must fit the block
// size.
void quantize_row(DType t, const float* src, void* dst, int64_t n);
// Whether quantize_row supports `t`.
bool can_quantize(DType t);

}  // namespace flashrt

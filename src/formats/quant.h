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
  uint16_t d;                // f16 scale
  uint8_t qs[kQK4_0 / 2];   // element j in low nibble of byte j, element j+16 in the high nibble
};
static_assert(sizeof(BlockQ4_0) == 18);

// Converts `n` elements of a row stored as `t` to f32.
void dequantize_row(DType t, const void* src, float* dst, int64_t n);
// Converts `n` f32 values to dtype `t` (f32/f16/bf16 or a quantized type); n must fit the block size.
void quantize_row(DType t, const float* src, void* dst, int64_t n);
// Whether quantize_row supports `t`.
bool can_quantize(DType t);

}  // namespace flashrt

// Device-side reads of one weight element in the layouts of weight_layout.h (used where speed does
// not matter: embedding rows, dequantization for the prefill GEMM, odd-sized GEMV fallbacks).
#pragma once
#include <cstdint>

#include "backends/cuda/device_util.cuh"
#include "core/dtype.h"

namespace flashrt::cuda {

struct WeightRef {
  const uint8_t* data;
  DType dtype;
  int64_t rows, cols;
};

__device__ __forceinline__ float weight_at(const WeightRef& w, int64_t r, int64_t k) {
  switch (w.dtype) {
    case DType::F32:
      return reinterpret_cast<const float*>(w.data)[r * w.cols + k];
    case DType::F16:
      return f16_bits_to_f32(reinterpret_cast<const uint16_t*>(w.data)[r * w.cols + k]);
    case DType::BF16:
      return bf16_bits_to_f32(reinterpret_cast<const uint16_t*>(w.data)[r * w.cols + k]);
    case DType::Q8_0: {
      const auto* d = reinterpret_cast<const uint16_t*>(w.data + w.rows * w.cols);
      const float s = f16_bits_to_f32(d[r * (w.cols / 32) + k / 32]);
      return s * static_cast<float>(static_cast<int8_t>(w.data[r * w.cols + k]));
    }
    case DType::Q4_0: {
      const auto* d = reinterpret_cast<const uint16_t*>(w.data + w.rows * w.cols / 2);
      const float s = f16_bits_to_f32(d[r * (w.cols / 32) + k / 32]);
      const int j = static_cast<int>(k % 32);
      const uint8_t b = w.data[r * w.cols / 2 + (k / 32) * 16 + (j & 15)];
      const int q = j < 16 ? (b & 0x0f) : (b >> 4);
      return s * static_cast<float>(q - 8);
    }
    default:
      return __int_as_float(0x7fc00000);  // rejected on the host before any launch
  }
}

}  // namespace flashrt::cuda

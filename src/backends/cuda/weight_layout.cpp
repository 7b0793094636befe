#include "backends/cuda/weight_layout.h"

#include <cstring>

#include "core/error.h"
#include "formats/quant.h"

namespace flashrt::cuda {

void to_device_layout(const Mat& m, uint8_t* dst) {
  const int64_t rows = m.rows, cols = m.cols, nb = cols / 32;
  switch (m.dtype) {
    case DType::Q8_0: {
      uint8_t* d = dst + rows * cols;
      const auto* b = reinterpret_cast<const BlockQ8_0*>(m.data);
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t k = 0; k < nb; ++k) {
          const BlockQ8_0& blk = b[r * nb + k];
          std::memcpy(dst + r * cols + k * kQK8_0, blk.qs, kQK8_0);
          std::memcpy(d + (r * nb + k) * 2, &blk.d, 2);
        }
      return;
    }
    case DType::Q4_0: {
      uint8_t* d = dst + rows * cols / 2;
      const auto* b = reinterpret_cast<const BlockQ4_0*>(m.data);
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t k = 0; k < nb; ++k) {
          const BlockQ4_0& blk = b[r * nb + k];
          std::memcpy(dst + r * cols / 2 + k * (kQK4_0 / 2), blk.qs, kQK4_0 / 2);
          std::memcpy(d + (r * nb + k) * 2, &blk.d, 2);
        }
      return;
    }
    case DType::F32:
    case DType::F16:
    case DType::BF16:
      std::memcpy(dst, m.data, m.bytes());
      return;
    default:
      fail("the CUDA backend cannot use {} weights", dtype_name(m.dtype));
  }
}

}  // namespace flashrt::cuda

// Views over buffers that kernels take. A Mat is a row-major weight matrix [rows, cols] (PyTorch's
// [out_features, in_features]); quantized rows are sequences of blocks. Pointers may be host or
// device memory: the backend that owns them knows which.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/dtype.h"

namespace flashrt {

struct Mat {
  const uint8_t* data = nullptr;
  DType dtype = DType::F32;
  int64_t rows = 0, cols = 0;

  bool empty() const { return data == nullptr; }
  size_t row_bytes() const { return dtype_bytes(dtype, cols); }
  size_t bytes() const { return row_bytes() * static_cast<size_t>(rows); }
  const uint8_t* row(int64_t r) const { return data + row_bytes() * static_cast<size_t>(r); }
  const float* f32() const { return reinterpret_cast<const float*>(data); }
};

// A weight by name, for code that walks every weight without knowing models (backend uploads).
struct NamedMat {
  std::string name;
  Mat* mat;
};

}  // namespace flashrt

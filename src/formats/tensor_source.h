// A named collection of tensors stored in some file format (safetensors, GGUF). Models ask a source
// for their weights by name; the bytes stay in the file's memory mapping.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace flashrt {

struct TensorInfo {
  std::string name;
  DType dtype;
  // Shape outermost first, as PyTorch writes it: a [out, in] matrix has shape {out, in}. (GGUF
  // lists dimensions innermost first; the GGUF reader reverses them.)
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  size_t bytes = 0;

  int64_t elements() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

class TensorSource {
 public:
  virtual ~TensorSource() = default;
  virtual const TensorInfo* find(const std::string& name) const = 0;  // nullptr when absent
  virtual std::vector<std::string> names() const = 0;
  virtual std::string describe() const = 0;  // file path(s), for error messages

  const TensorInfo& get(const std::string& name) const;  // throws Error naming the file when absent
};

}  // namespace flashrt

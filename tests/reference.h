// Access to the transformers reference fixtures in ../shared (see ../shared/reference/README.md).
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "formats/safetensors.h"
#include "test_paths.h"

namespace flashrt::testing {

inline std::string ref_model_dir(const std::string& name) {
  return shared_dir() + "/reference/" + name;
}
inline std::string trained_model_dir(const std::string& name) {
  return shared_dir() + "/models/" + name;
}

class Reference {
 public:
  explicit Reference(const std::string& dir, const std::string& file = "reference.safetensors")
      : file_(SafetensorsFile::open(dir + "/" + file)) {}
  bool has(const std::string& name) const { return file_->find(name) != nullptr; }
  std::vector<int32_t> ids(const std::string& name) const {
    const auto& t = file_->get(name);
    EXPECT_EQ(t.dtype, DType::I64) << name;
    std::vector<int32_t> out(static_cast<size_t>(t.elements()));
    for (size_t i = 0; i < out.size(); ++i) {
      int64_t v;
      std::memcpy(&v, t.data + i * 8, 8);
      out[i] = static_cast<int32_t>(v);
    }
    return out;
  }
  std::vector<float> floats(const std::string& name, std::vector<int64_t>* shape = nullptr) const {
    const auto& t = file_->get(name);
    EXPECT_EQ(t.dtype, DType::F32) << name;
    if (shape) *shape = t.shape;
    std::vector<float> out(static_cast<size_t>(t.elements()));
    std::memcpy(out.data(), t.data, out.size() * 4);
    return out;
  }

 private:
  std::unique_ptr<SafetensorsFile> file_;
};

// Largest |a - b| over two equal-length arrays.
inline float max_abs_diff(const float* a, const float* b, size_t n) {
  float m = 0;
  for (size_t i = 0; i < n; ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}
inline float max_abs(const float* a, size_t n) {
  float m = 0;
  for (size_t i = 0; i < n; ++i) m = std::max(m, std::fabs(a[i]));
  return m;
}

}  // namespace flashrt::testing

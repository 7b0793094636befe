// Helpers of the GPU tests: random data, device buffers through the Backend interface, weights
// uploaded with upload_weights, and the relative error ||out - ref|| / ||ref||. Every test starts
// with FLASHRT_REQUIRE_GPU(), so the suite skips cleanly on machines without a CUDA device.
#pragma once
#include <gtest/gtest.h>

#include "test_random.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "formats/quant.h"
#include "models/model.h"
#include "test_paths.h"

#define FLASHRT_REQUIRE_GPU() \
  if (!::flashrt::cuda_available()) GTEST_SKIP() << "no CUDA device"

namespace flashrt::testing {

// ||a - ref|| / ||ref|| in double; +inf when the sizes differ or a value of `a` is not finite (an
// unwritten, NaN-poisoned output never passes).
inline double rel_err(const std::vector<float>& a, const std::vector<float>& ref) {
  if (a.size() != ref.size()) return std::numeric_limits<double>::infinity();
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i])) return std::numeric_limits<double>::infinity();
    const double d = static_cast<double>(a[i]) - ref[i];
    num += d * d;
    den += static_cast<double>(ref[i]) * ref[i];
  }
  return den == 0 ? std::sqrt(num) : std::sqrt(num / den);
}

// n elements of backend memory.
template <class T>
class Buf {
 public:
  Buf(Backend& be, size_t n)
      : be_(&be), n_(n), mem_(be.alloc(std::max<size_t>(1, n) * sizeof(T))) {}
  Buf(Backend& be, const std::vector<T>& v) : Buf(be, v.size()) { set(v); }
  // n elements of all-ones bytes (NaN as floats): outputs a kernel forgets to write show up.
  static Buf poisoned(Backend& be, size_t n) {
    Buf b(be, n);
    std::vector<uint8_t> ff(n * sizeof(T), 0xff);
    be.to_device(b.get(), ff.data(), ff.size());
    return b;
  }
  T* get() const { return reinterpret_cast<T*>(mem_.get()); }
  void set(const std::vector<T>& v) { be_->to_device(get(), v.data(), v.size() * sizeof(T)); }
  std::vector<T> host() const {
    std::vector<T> v(n_);
    be_->to_host(v.data(), get(), n_ * sizeof(T));
    return v;
  }

 private:
  Backend* be_;
  size_t n_;
  std::shared_ptr<uint8_t> mem_;
};

// A random weight matrix stored as `t`: its host bytes (llama.cpp layout, what the CPU reads) and
// a copy in `gpu`'s memory made by upload_weights (the CUDA layout).
struct TestMat {
  std::vector<uint8_t> bytes;
  Mat cpu;
  Mat dev;
  TestMat(Backend& gpu, DType t, int64_t rows, int64_t cols, uint32_t seed) {
    const auto f = randn(static_cast<size_t>(rows * cols), seed);
    bytes.resize(dtype_bytes(t, rows * cols));
    const size_t row_bytes = dtype_bytes(t, cols);
    for (int64_t r = 0; r < rows; ++r)
      quantize_row(t, f.data() + r * cols, bytes.data() + row_bytes * static_cast<size_t>(r), cols);
    cpu = Mat{bytes.data(), t, rows, cols};
    dev = cpu;
    const NamedMat w[] = {{"test", &dev}};
    gpu.upload_weights(w);
  }
};

// A trained model's weights: its HF folder in the shared fixtures or, where model.safetensors was
// left out (a device run's upload is limited), the same bf16 weights as the repository's
// models/NAME.gguf. Its reference.safetensors is read from the fixtures either way.
inline std::string trained_weights(const std::string& name) {
  const std::string dir = shared_dir() + "/models/" + name;
  if (std::filesystem::exists(dir + "/model.safetensors")) return dir;
  const std::string gguf = source_dir() + "/models/" + name + ".gguf";
  return std::filesystem::exists(gguf) ? gguf : dir;
}

// A model with its weights in `be`'s memory (load_model(path, be) hashes them first).
inline std::unique_ptr<Model> load_model_on(Backend& be, const std::string& path) {
  return load_model(path, be);
}

}  // namespace flashrt::testing

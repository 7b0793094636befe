// NumPy .npy writer (and a small reader for tests): float32 / int64 arrays, C order.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace flashrt {

void write_npy_f32(const std::string& path, const float* data, const std::vector<int64_t>& shape);

struct NpyArray {
  std::string descr;  // e.g. "<f4"
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;
};
NpyArray read_npy(const std::string& path);

}  // namespace flashrt

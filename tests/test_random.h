// Seeded normal random vectors for the kernel tests (the same sequence for a given seed in every
// test binary, so data made here and on the GPU side agree).
#pragma once
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace flashrt::testing {

inline std::vector<float> randn(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

}  // namespace flashrt::testing

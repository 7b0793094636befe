// Helpers for running CPU kernel tests on every instruction set the machine has.
#pragma once
#include <random>
#include <vector>

#include "backends/cpu/isa.h"

namespace flashrt::testing_cpu {

// The kernel tables this machine can run, the scalar reference first.
inline std::vector<cpu::Isa> machine_isas() {
  std::vector<cpu::Isa> v;
  for (cpu::Isa i : {cpu::Isa::kScalar, cpu::Isa::kAvx2, cpu::Isa::kAvx512, cpu::Isa::kAvx512Vnni})
    if (i <= cpu::detected_isa()) v.push_back(i);
  return v;
}

// Uses `isa` until the end of the scope.
class IsaScope {
 public:
  explicit IsaScope(cpu::Isa isa) : prev_(cpu::active_isa()) { cpu::force_isa(isa); }
  ~IsaScope() { cpu::force_isa(prev_); }
  IsaScope(const IsaScope&) = delete;
  IsaScope& operator=(const IsaScope&) = delete;

 private:
  cpu::Isa prev_;
};

inline std::vector<float> randn(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

}  // namespace flashrt::testing_cpu

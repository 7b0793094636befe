// Helpers for running CPU kernel tests on every instruction set the machine has.
#pragma once
#include <random>
#include <vector>

#include "backends/cpu/isa.h"
#include "test_random.h"

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

using flashrt::testing::randn;

}  // namespace flashrt::testing_cpu

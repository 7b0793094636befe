// Picks the kernel table once from cpuid (and the OS's saved register state), unless the
// FLASHRT_CPU_ISA environment variable (scalar, avx2, avx512, avx512-vnni) asks for a lesser one.
#include "backends/cpu/isa.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "backends/cpu/kernels.h"

namespace flashrt::cpu {

namespace {

#if defined(__x86_64__) || defined(__i386__)
uint64_t xgetbv0() {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

Isa detect() {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return Isa::kScalar;
  const bool fma = c & (1u << 12), osxsave = c & (1u << 27), avx = c & (1u << 28),
             f16c = c & (1u << 29);
  if (!(osxsave && avx && fma && f16c)) return Isa::kScalar;
  const uint64_t xcr0 = xgetbv0();
  if ((xcr0 & 0x6) != 0x6) return Isa::kScalar;  // the OS saves xmm/ymm state
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return Isa::kScalar;
  const bool avx2 = b & (1u << 5);
  const bool avx512 = (b & (1u << 16)) && (b & (1u << 30)) && (b & (1u << 31));  // F, BW, VL
  const bool vnni = c & (1u << 11);
  if (avx512 && (xcr0 & 0xe0) == 0xe0) return vnni ? Isa::kAvx512Vnni : Isa::kAvx512;
  return avx2 ? Isa::kAvx2 : Isa::kScalar;
}
#else
Isa detect() {
  return Isa::kScalar;
}
#endif

const KernelTable* table_for(Isa isa) {
  switch (isa) {
    case Isa::kAvx512Vnni:
      return avx512_vnni_kernels();
    case Isa::kAvx512:
      return avx512_kernels();
    case Isa::kAvx2:
      return avx2_kernels();
    default:
      return nullptr;
  }
}

Isa from_env(Isa best) {
  const char* e = std::getenv("FLASHRT_CPU_ISA");
  if (!e || !*e) return best;
  for (Isa i : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAvx512Vnni})
    if (std::strcmp(e, isa_name(i)) == 0 && i <= best) return i;
  return best;
}

struct State {
  Isa detected = detect();
  std::atomic<Isa> active{from_env(detected)};
};
State& state() {
  static State s;
  return s;
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kAvx512Vnni:
      return "avx512-vnni";
    case Isa::kAvx512:
      return "avx512";
    case Isa::kAvx2:
      return "avx2";
    default:
      return "scalar";
  }
}

Isa detected_isa() {
  return state().detected;
}
Isa active_isa() {
  return state().active.load(std::memory_order_relaxed);
}
const KernelTable* kernel_table() {
  return table_for(active_isa());
}

bool force_isa(Isa isa) {
  if (isa > state().detected) return false;
  state().active.store(isa, std::memory_order_relaxed);
  return true;
}

const char* kernel_isa() {
  return isa_name(active_isa());
}

}  // namespace flashrt::cpu

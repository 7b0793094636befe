// The AVX-512 kernel table (F, BW, VL; without VNNI). Built with -mavx512f -mavx512bw -mavx512vl
// -mfma -mf16c (CMakeLists.txt); reached only through isa.cpp after cpuid.
#if defined(__x86_64__) || defined(__i386__)
#define FLASHRT_CPU_VNNI 0
#define FLASHRT_KERNEL_TABLE_NAME "avx512"
#define FLASHRT_KERNEL_TABLE_FN avx512_kernels
#include "backends/cpu/isa.h"
// the vector interface first: the kernels are written against it
#include "backends/cpu/simd_avx512.h"

#include "backends/cpu/kernels_table_impl.h"
#else
#include "backends/cpu/isa.h"
const flashrt::cpu::KernelTable* flashrt::cpu::avx512_kernels() {
  return nullptr;
}
#endif

// The AVX2 kernel table (with FMA and F16C), 16 lanes as pairs of 8. Built with -mavx2 -mfma
// -mf16c (CMakeLists.txt); reached only through isa.cpp after cpuid.
#if defined(__x86_64__) || defined(__i386__)
#define FLASHRT_KERNEL_TABLE_NAME "avx2"
#define FLASHRT_KERNEL_TABLE_FN avx2_kernels
#include "backends/cpu/isa.h"
// the vector interface first: the kernels are written against it
#include "backends/cpu/simd_avx2.h"

#include "backends/cpu/kernels_table_impl.h"
#else
#include "backends/cpu/isa.h"
const flashrt::cpu::KernelTable* flashrt::cpu::avx2_kernels() {
  return nullptr;
}
#endif

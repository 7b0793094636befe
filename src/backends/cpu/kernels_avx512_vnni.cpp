// The AVX-512 kernel table with VNNI (vpdpbusd / vpdpwssd for the int8 and int16 dot products).
// Built with the flags of kernels_avx512.cpp plus -mavx512vnni (CMakeLists.txt).
#if defined(__x86_64__) || defined(__i386__)
#define FLASHRT_CPU_VNNI 1
#define FLASHRT_KERNEL_TABLE_NAME "avx512-vnni"
#define FLASHRT_KERNEL_TABLE_FN avx512_vnni_kernels
#include "backends/cpu/isa.h"
// the vector interface first: the kernels are written against it
#include "backends/cpu/simd_avx512.h"

#include "backends/cpu/kernels_table_impl.h"
#else
#include "backends/cpu/isa.h"
const flashrt::cpu::KernelTable* flashrt::cpu::avx512_vnni_kernels() {
  return nullptr;
}
#endif

// The kernel table of one instruction set, from the *_impl.h kernels (include a simd_*.h header
// and define FLASHRT_KERNEL_TABLE_NAME / _FN first). Included once per ISA file.
#pragma once
#ifndef FLASHRT_CPU_SIMD
#error "include simd_avx512.h or simd_avx2.h before the kernels"
#endif

#include "backends/cpu/matmul_f_impl.h"
#include "backends/cpu/matmul_q_impl.h"
#include "backends/cpu/ops_impl.h"

namespace flashrt::cpu {
namespace {

bool is_quantized(int wtype) {
  return wtype >= kWQ8_0;
}

size_t matmul_scratch(const WeightView& w, int T) {
  return is_quantized(w.type) ? q_matmul_scratch(w, T) : 0;
}

int matmul_row_group(const WeightView& w, int T) {
  if (!is_quantized(w.type)) return kFRows;
  return T <= gemv_max_t(w.type) ? 16 : 16 * kQRows;
}

void matmul_rows(float* out, const WeightView& w, int64_t n0, int64_t n1, int T, const float* x,
                 const QuantActs* a, uint8_t* scratch) {
  if (is_quantized(w.type))
    q_matmul_rows(out, w, n0, n1, T, *a, scratch);
  else
    f_matmul_rows(out, w, n0, n1, T, x);
}

const KernelTable kTable = {
    FLASHRT_KERNEL_TABLE_NAME,
    quantize_acts,
    matmul_scratch,
    matmul_row_group,
    matmul_rows,
    rmsnorm_row,
    swiglu,
    sigmoid_mul,
    add,
    rope_head,
    conv1d_silu,
    attention_tile,
    to_f16,
    gdn_head,
};

}  // namespace

const KernelTable* FLASHRT_KERNEL_TABLE_FN() {
  return &kTable;
}

}  // namespace flashrt::cpu

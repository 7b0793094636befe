// Prefill matrix products (T > kGemvMaxT) through cuBLAS: out[T, N] = x[T, K] * W[N, K]^T. In
// cuBLAS's column-major terms that is out^T (N x T, ld N) = op_T(W as K x N, ld K) * x^T (K x T).
// Precision: the CPU computes in f32, and the tests hold this backend to the CPU, so
//  - bf16 weights: the activations are split into two bf16 terms, hi = bf16(x), lo = bf16(x - hi)
//    (x - hi is exact in f32), and out = W*hi + W*lo by two bf16 tensor-core GEMMs accumulating in
//    f32. What is left out is bf16's rounding of lo, 2^-16 |x|, so the result is f32-accurate
//    (~1e-5) at twice the tensor-core work of one GEMM. Without split (CudaOptions::split_bf16 off)
//    only W*hi is computed: half the work, activations rounded to bf16 (~3e-3).
//  - f32 weights: SGEMM.
//  - f16, q8_0, q4_0 weights: bands of rows are dequantized exactly into a reusable f32 buffer and
//    each band goes through SGEMM. Correctness first: these run on the f32 units, not the tensor
//    cores (bf16 is the benchmarked type).
#include <cuda_bf16.h>

#include <algorithm>

#include "backends/cuda/check.h"
#include "backends/cuda/kernels.h"
#include "backends/cuda/weight_access.cuh"

namespace flashrt::cuda {

namespace {

constexpr int64_t kDequantFloats = int64_t{8} << 20;  // 32 MB of dequantized rows per band

__global__ void split_bf16_kernel(const float* __restrict__ x, __nv_bfloat16* __restrict__ hi,
                                  __nv_bfloat16* __restrict__ lo, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float v = x[i];
    const __nv_bfloat16 h = __float2bfloat16_rn(v);
    hi[i] = h;
    if (lo) lo[i] = __float2bfloat16_rn(v - __bfloat162float(h));
  }
}

__global__ void dequant_rows_kernel(float* __restrict__ out, WeightRef w, int64_t row0,
                                    int64_t rows) {
  const int64_t n = rows * w.cols;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[i] = weight_at(w, row0 + i / w.cols, i % w.cols);
}

}  // namespace

size_t gemm_act_elems(const Mat& w, int T) {
  return w.dtype == DType::BF16 ? 2 * static_cast<size_t>(T) * static_cast<size_t>(w.cols) : 0;
}

int64_t gemm_band_rows(const Mat& w) {
  if (w.dtype == DType::BF16 || w.dtype == DType::F32) return 0;
  return std::min<int64_t>(w.rows, std::max<int64_t>(1, kDequantFloats / w.cols));
}

void gemm(cudaStream_t s, cublasHandle_t h, float* out, const float* x, const Mat& w, int T,
          bool split_bf16, const GemmBuffers& buf) {
  const int N = static_cast<int>(w.rows), K = static_cast<int>(w.cols);
  const float one = 1.0f, zero = 0.0f;
  switch (w.dtype) {
    case DType::BF16: {
      const int64_t n = static_cast<int64_t>(T) * K;
      auto* hi = reinterpret_cast<__nv_bfloat16*>(buf.act);
      auto* lo = split_bf16 ? hi + n : nullptr;
      split_bf16_kernel<<<grid_for(n, 256), 256, 0, s>>>(x, hi, lo, n);
      FLASHRT_CUDA_LAUNCH_CHECK();
      FLASHRT_CUBLAS_CHECK(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, N, T, K, &one, w.data,
                                        CUDA_R_16BF, K, hi, CUDA_R_16BF, K, &zero, out, CUDA_R_32F,
                                        N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
      if (lo)
        FLASHRT_CUBLAS_CHECK(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, N, T, K, &one, w.data,
                                          CUDA_R_16BF, K, lo, CUDA_R_16BF, K, &one, out, CUDA_R_32F,
                                          N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
      return;
    }
    case DType::F32:
      FLASHRT_CUBLAS_CHECK(
          cublasSgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, N, T, K, &one, w.f32(), K, x, K, &zero, out, N));
      return;
    case DType::F16:
    case DType::Q8_0:
    case DType::Q4_0: {
      const WeightRef ref{w.data, w.dtype, w.rows, w.cols};
      for (int64_t r0 = 0; r0 < w.rows; r0 += buf.band_rows) {
        const int64_t rows = std::min<int64_t>(buf.band_rows, w.rows - r0);
        dequant_rows_kernel<<<grid_for(rows * K, 256), 256, 0, s>>>(buf.dequant, ref, r0, rows);
        FLASHRT_CUDA_LAUNCH_CHECK();
        FLASHRT_CUBLAS_CHECK(cublasSgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(rows), T, K,
                                         &one, buf.dequant, K, x, K, &zero, out + r0, N));
      }
      return;
    }
    default:
      throw_error("the CUDA backend cannot multiply with " + std::string(dtype_name(w.dtype)) +
                  " weights");
  }
}

}  // namespace flashrt::cuda

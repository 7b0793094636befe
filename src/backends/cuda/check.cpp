#include "backends/cuda/check.h"

#include <cublas_v2.h>

#include "core/error.h"

namespace flashrt::cuda {

void throw_error(const std::string& message) {
  throw Error(message);
}

void throw_cuda_error(cudaError_t e, const char* expr, const char* file, int line) {
  fail("CUDA error {} ({}) in {} at {}:{}", cudaGetErrorName(e), cudaGetErrorString(e), expr, file,
       line);
}

void throw_cublas_error(int status, const char* expr, const char* file, int line) {
  fail("cuBLAS error {} ({}) in {} at {}:{}", status,
       cublasGetStatusString(static_cast<cublasStatus_t>(status)), expr, file, line);
}

}  // namespace flashrt::cuda

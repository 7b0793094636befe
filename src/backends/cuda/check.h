// Error checks for CUDA and cuBLAS calls: every failure becomes a flashrt::Error naming the call,
// the file and the line, so nothing fails silently. Kernel launches are checked with
// cudaGetLastError right after the launch (that also works while a stream is being captured).
#pragma once
#include <cuda_runtime.h>

#include <string>

namespace flashrt::cuda {

// flashrt::fail for the .cu files, which cannot include fmt (nvcc rejects its consteval checks).
[[noreturn]] void throw_error(const std::string& message);

[[noreturn]] void throw_cuda_error(cudaError_t e, const char* expr, const char* file, int line);
[[noreturn]] void throw_cublas_error(int status, const char* expr, const char* file, int line);

}  // namespace flashrt::cuda

#define FLASHRT_CUDA_CHECK(expr)                                                  \
  do {                                                                            \
    const cudaError_t flashrt_err_ = (expr);                                      \
    if (flashrt_err_ != cudaSuccess)                                              \
      ::flashrt::cuda::throw_cuda_error(flashrt_err_, #expr, __FILE__, __LINE__); \
  } while (0)

#define FLASHRT_CUDA_LAUNCH_CHECK() FLASHRT_CUDA_CHECK(cudaGetLastError())

#define FLASHRT_CUBLAS_CHECK(expr)                                                 \
  do {                                                                             \
    const int flashrt_st_ = static_cast<int>(expr);                                \
    if (flashrt_st_ != 0)                                                          \
      ::flashrt::cuda::throw_cublas_error(flashrt_st_, #expr, __FILE__, __LINE__); \
  } while (0)

// Greedy decoding's argmax on the device, so only 4 bytes cross the bus per token. One block scans
// the logits (a vocabulary is at most a few hundred thousand floats: a few microseconds); ties go
// to the lowest index, as on the CPU. NaNs never win; all -inf (or NaN) gives index 0.
#include <cfloat>

#include "backends/cuda/check.h"
#include "backends/cuda/kernels.h"

namespace flashrt::cuda {

namespace {

constexpr int kThreads = 1024;

struct Best {
  float v;
  int64_t i;
};

__device__ __forceinline__ Best better(Best a, Best b) {
  if (b.v > a.v || (b.v == a.v && b.i < a.i)) return b;
  return a;
}

__global__ void __launch_bounds__(kThreads)
    argmax_kernel(const float* __restrict__ logits, int64_t n, int32_t* __restrict__ out) {
  __shared__ Best red[kThreads / 32];
  Best b{-INFINITY, INT64_MAX};
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) b = better(b, Best{logits[i], i});
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    Best other{__shfl_xor_sync(0xffffffffu, b.v, o), __shfl_xor_sync(0xffffffffu, b.i, o)};
    b = better(b, other);
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) red[warp] = b;
  __syncthreads();
  if (threadIdx.x == 0) {
    Best r = red[0];
    for (int w = 1; w < kThreads / 32; ++w) r = better(r, red[w]);
    *out = r.i == INT64_MAX ? 0 : static_cast<int32_t>(r.i);
  }
}

}  // namespace

void argmax(cudaStream_t s, const float* logits, int64_t n, int32_t* out) {
  argmax_kernel<<<1, kThreads, 0, s>>>(logits, n, out);
  FLASHRT_CUDA_LAUNCH_CHECK();
}

}  // namespace flashrt::cuda

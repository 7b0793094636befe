// Depthwise causal conv1d + SiLU over x [T, C], continuing from conv_state [K-1, C] (oldest first).
// The outputs have no recurrence (each reads K inputs), so one thread per (t, c) computes them;
// a second kernel, one thread per channel, then moves the last K-1 inputs into the state (two
// kernels: the first reads the old state that the second overwrites).
#include "backends/cuda/check.h"
#include "backends/cuda/device_util.cuh"
#include "backends/cuda/kernels.h"

namespace flashrt::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kMaxKernel = 16;

// Input e of the channel's window: the K-1 state rows, then the T new rows.
__device__ __forceinline__ float window(const float* x, const float* state, int64_t e, int64_t c,
                                        int channels, int hist) {
  return e < hist ? state[e * channels + c] : x[(e - hist) * channels + c];
}

__global__ void conv_kernel(float* __restrict__ out, const float* __restrict__ x, SlotRef slot,
                            size_t region, const float* __restrict__ w, int T, int channels,
                            int K) {
  const float* state = slot_region<float>(slot, region);
  const int64_t n = static_cast<int64_t>(T) * channels;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t t = i / channels, c = i % channels;
    const float* wc = w + c * K;
    float s = 0;
    for (int j = 0; j < K; ++j) s += wc[j] * window(x, state, t + j, c, channels, K - 1);
    out[i] = silu(s);
  }
}

__global__ void conv_state_kernel(const float* __restrict__ x, SlotRef slot, size_t region, int T,
                                  int channels, int K) {
  float* state = slot_region<float>(slot, region);
  const int hist = K - 1;
  for (int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; c < channels;
       c += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    // Ascending j reads window input T + j > j before anything at or after it is overwritten.
    for (int j = 0; j < hist; ++j)
      state[j * channels + c] = window(x, state, T + j, c, channels, hist);
  }
}

}  // namespace

void conv1d_silu(cudaStream_t s, float* out, const float* x, SlotRef slot, size_t conv_state,
                 const float* w, int T, int channels, int K) {
  if (K < 1 || K > kMaxKernel)
    throw_error("conv1d: kernel size " + std::to_string(K) + " (1.." + std::to_string(kMaxKernel) +
                ")");
  if (out == x) throw_error("conv1d: the output must not overwrite the input");
  const int64_t n = static_cast<int64_t>(T) * channels;
  conv_kernel<<<grid_for(n, kThreads), kThreads, 0, s>>>(out, x, slot, conv_state, w, T, channels,
                                                         K);
  FLASHRT_CUDA_LAUNCH_CHECK();
  if (K > 1) {
    conv_state_kernel<<<grid_for(channels, kThreads), kThreads, 0, s>>>(x, slot, conv_state, T,
                                                                        channels, K);
    FLASHRT_CUDA_LAUNCH_CHECK();
  }
}

}  // namespace flashrt::cuda

// Small device helpers shared by the kernels: number conversions, warp and block sums, the
// activation functions (with expf, not the fast __expf, to stay within an ulp or two of the CPU).
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "backends/cuda/kernels.h"

namespace flashrt::cuda {

__device__ __forceinline__ float bf16_bits_to_f32(uint32_t h) {
  return __uint_as_float(h << 16);
}
__device__ __forceinline__ float f16_bits_to_f32(uint16_t h) {
  return __half2float(__ushort_as_half(h));
}

template <class V>
__device__ __forceinline__ V warp_sum(V v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over the whole block, returned to every thread. `red` holds 32 values; the trailing barrier
// lets the caller reuse `red` and overwrite what the block read before the call.
template <class V>
__device__ __forceinline__ V block_sum(V v, V* red) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int warps = (blockDim.x + 31) >> 5;
  v = warp_sum(v);
  if (lane == 0) red[warp] = v;
  __syncthreads();
  V s = 0;
  for (int w = 0; w < warps; ++w) s += red[w];  // same order in every thread: same result
  __syncthreads();
  return s;
}

__device__ __forceinline__ float silu(float x) {
  return x / (1.0f + expf(-x));
}
__device__ __forceinline__ float sigmoid(float x) {
  return 1.0f / (1.0f + expf(-x));
}
__device__ __forceinline__ float softplus(float x) {
  return x > 20.0f ? x : log1pf(expf(x));
}

// The region at `offset` of a sequence's slot (kernels.h: SlotRef).
template <class T>
__device__ __forceinline__ T* slot_region(SlotRef slot, size_t offset) {
  return reinterpret_cast<T*>(*slot.base + offset);
}

inline unsigned grid_for(int64_t n, int threads, int64_t max_blocks = 65535 * 16) {
  int64_t b = (n + threads - 1) / threads;
  if (b > max_blocks) b = max_blocks;
  return static_cast<unsigned>(b < 1 ? 1 : b);
}

}  // namespace flashrt::cuda

// Elementwise ops and the writes into a sequence's slot: embedding lookup, residual add, SwiGLU,
// the attention output gate, KV/token row stores, logits and the position advance. The writes read
// the positions and the slot's base from device memory, so a captured step stays valid.
#include "backends/cuda/check.h"
#include "backends/cuda/device_util.cuh"
#include "backends/cuda/kernels.h"
#include "backends/cuda/weight_access.cuh"

namespace flashrt::cuda {

namespace {

constexpr int kThreads = 256;

#define FLASHRT_GRID_STRIDE(i, n)                                                        \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

// One block per token. An id outside the table cannot come from a Session (it checks ids on the
// host); if one does, the row is NaN so the error shows instead of reading out of bounds.
__global__ void embed_kernel(float* __restrict__ out, WeightRef table,
                             const int32_t* __restrict__ ids) {
  const int64_t t = blockIdx.x;
  const int32_t id = ids[t];
  float* o = out + t * table.cols;
  const bool ok = id >= 0 && id < table.rows;
  for (int64_t k = threadIdx.x; k < table.cols; k += blockDim.x)
    o[k] = ok ? weight_at(table, id, k) : __int_as_float(0x7fc00000);
}

__global__ void add_kernel(float* __restrict__ x, const float* __restrict__ y, int64_t n) {
  FLASHRT_GRID_STRIDE(i, n) x[i] += y[i];
}

// out may alias gate (each element is read before it is written by the same thread).
__global__ void swiglu_kernel(float* out, const float* gate, const float* __restrict__ up,
                              int64_t n) {
  FLASHRT_GRID_STRIDE(i, n) out[i] = silu(gate[i]) * up[i];
}

__global__ void sigmoid_gate_kernel(float* __restrict__ x, const float* __restrict__ gate, int dim,
                                    int64_t gate_stride, int64_t n) {
  FLASHRT_GRID_STRIDE(i, n) {
    const int64_t r = i / dim, c = i % dim;
    x[i] *= sigmoid(gate[r * gate_stride + c]);
  }
}

// Row t of src into row pos[t] of the positional region.
template <class V>
__global__ void store_kernel(SlotRef slot, size_t region, const V* __restrict__ src,
                             int64_t row_elems, int64_t n, const int64_t* __restrict__ pos) {
  V* dst = slot_region<V>(slot, region);
  FLASHRT_GRID_STRIDE(i, n) dst[pos[i / row_elems] * row_elems + i % row_elems] = src[i];
}

__global__ void store_floats_kernel(SlotRef slot, size_t region, const float* __restrict__ src,
                                    int64_t n) {
  float* dst = slot_region<float>(slot, region);
  FLASHRT_GRID_STRIDE(i, n) dst[i] = src[i];
}

__global__ void load_floats_kernel(SlotRef slot, size_t region, float* __restrict__ dst,
                                   int64_t n) {
  const float* src = slot_region<float>(slot, region);
  FLASHRT_GRID_STRIDE(i, n) dst[i] = src[i];
}

__global__ void advance_pos_kernel(SlotRef slot, size_t region, const int64_t* last_pos) {
  *slot_region<int64_t>(slot, region) = *last_pos + 1;
}

#undef FLASHRT_GRID_STRIDE

}  // namespace

void embed(cudaStream_t s, float* out, const Mat& table, const int32_t* ids, int T) {
  const WeightRef ref{table.data, table.dtype, table.rows, table.cols};
  embed_kernel<<<T, kThreads, 0, s>>>(out, ref, ids);
  FLASHRT_CUDA_LAUNCH_CHECK();
}

void add(cudaStream_t s, float* x, const float* y, int64_t n) {
  add_kernel<<<grid_for(n, kThreads), kThreads, 0, s>>>(x, y, n);
  FLASHRT_CUDA_LAUNCH_CHECK();
}

void swiglu(cudaStream_t s, float* out, const float* gate, const float* up, int64_t n) {
  swiglu_kernel<<<grid_for(n, kThreads), kThreads, 0, s>>>(out, gate, up, n);
  FLASHRT_CUDA_LAUNCH_CHECK();
}

void sigmoid_gate(cudaStream_t s, float* x, const float* gate, int rows, int dim,
                  int64_t gate_stride) {
  const int64_t n = static_cast<int64_t>(rows) * dim;
  sigmoid_gate_kernel<<<grid_for(n, kThreads), kThreads, 0, s>>>(x, gate, dim, gate_stride, n);
  FLASHRT_CUDA_LAUNCH_CHECK();
}

void store_rows(cudaStream_t s, SlotRef slot, size_t region, const float* src, int T,
                int64_t row_elems, const int64_t* pos) {
  const int64_t n = static_cast<int64_t>(T) * row_elems;
  store_kernel<float>
      <<<grid_for(n, kThreads), kThreads, 0, s>>>(slot, region, src, row_elems, n, pos);
  FLASHRT_CUDA_LAUNCH_CHECK();
}

void store_tokens(cudaStream_t s, SlotRef slot, size_t region, const int32_t* ids, int T,
                  const int64_t* pos) {
  store_kernel<int32_t><<<grid_for(T, kThreads), kThreads, 0, s>>>(slot, region, ids, 1, T, pos);
  FLASHRT_CUDA_LAUNCH_CHECK();
}

void store_floats(cudaStream_t s, SlotRef slot, size_t region, const float* src, int64_t n) {
  store_floats_kernel<<<grid_for(n, kThreads), kThreads, 0, s>>>(slot, region, src, n);
  FLASHRT_CUDA_LAUNCH_CHECK();
}

void load_floats(cudaStream_t s, SlotRef slot, size_t region, float* dst, int64_t n) {
  load_floats_kernel<<<grid_for(n, kThreads), kThreads, 0, s>>>(slot, region, dst, n);
  FLASHRT_CUDA_LAUNCH_CHECK();
}

void advance_pos(cudaStream_t s, SlotRef slot, size_t region, const int64_t* last_pos) {
  advance_pos_kernel<<<1, 1, 0, s>>>(slot, region, last_pos);
  FLASHRT_CUDA_LAUNCH_CHECK();
}

}  // namespace flashrt::cuda

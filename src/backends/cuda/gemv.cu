// Decode matrix products (T <= kGemvMaxT activation rows): out[t, n] = sum_k x[t, k] * W[n, k].
// Memory-bound on W, so: one warp per weight row; each lane streams 16-byte units of the row with
// kUnroll loads issued before the first is used; all T activation rows are applied to each unit
// while it is in registers (W is read once per call); f32 accumulation and a warp-shuffle sum at
// the end. The activations (a few KB) come through the read-only cache, shared by every warp.
// Rows whose length or alignment rule out 16-byte units take a scalar path (odd test sizes).
#include "backends/cuda/check.h"
#include "backends/cuda/device_util.cuh"
#include "backends/cuda/kernels.h"
#include "backends/cuda/weight_access.cuh"

namespace flashrt::cuda {

namespace {

constexpr int kWarps = 4;  // weight rows per block

// One 16-byte unit of a weight row and how to turn it into kElems floats; kInFlight units are
// loaded per lane before the first is used.
struct Bf16Unit {
  static constexpr int kElems = 8, kInFlight = 4;
  uint4 q;
  __device__ void load(const uint8_t* w, int64_t row, int64_t u, int64_t, int64_t K) {
    q = __ldg(reinterpret_cast<const uint4*>(w + (row * K + u * kElems) * 2));
  }
  __device__ void unpack(float* v) const {
    const uint32_t p[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      v[2 * i] = __uint_as_float(p[i] << 16);
      v[2 * i + 1] = __uint_as_float(p[i] & 0xffff0000u);
    }
  }
};

struct F16Unit {
  static constexpr int kElems = 8, kInFlight = 4;
  uint4 q;
  __device__ void load(const uint8_t* w, int64_t row, int64_t u, int64_t, int64_t K) {
    q = __ldg(reinterpret_cast<const uint4*>(w + (row * K + u * kElems) * 2));
  }
  __device__ void unpack(float* v) const {
    const uint32_t p[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      v[2 * i] = f16_bits_to_f32(static_cast<uint16_t>(p[i] & 0xffffu));
      v[2 * i + 1] = f16_bits_to_f32(static_cast<uint16_t>(p[i] >> 16));
    }
  }
};

struct F32Unit {
  static constexpr int kElems = 4, kInFlight = 4;
  float4 q;
  __device__ void load(const uint8_t* w, int64_t row, int64_t u, int64_t, int64_t K) {
    q = __ldg(reinterpret_cast<const float4*>(w + (row * K + u * kElems) * 4));
  }
  __device__ void unpack(float* v) const {
    v[0] = q.x;
    v[1] = q.y;
    v[2] = q.z;
    v[3] = q.w;
  }
};

// Half a q8_0 block: 16 int8 quants and the block's scale.
struct Q8Unit {
  static constexpr int kElems = 16, kInFlight = 4;
  uint4 q;
  float d;
  __device__ void load(const uint8_t* w, int64_t row, int64_t u, int64_t N, int64_t K) {
    q = __ldg(reinterpret_cast<const uint4*>(w + row * K + u * kElems));
    const auto* sc = reinterpret_cast<const unsigned short*>(w + N * K);
    d = f16_bits_to_f32(__ldg(sc + row * (K / 32) + u / 2));
  }
  __device__ void unpack(float* v) const {
    const uint32_t p[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int b = 0; b < 4; ++b)
        v[4 * i + b] = d * static_cast<float>(static_cast<int8_t>((p[i] >> (8 * b)) & 0xffu));
  }
};

// One q4_0 block: 16 bytes of nibbles (byte j: element j low, element j + 16 high) and the scale.
struct Q4Unit {
  static constexpr int kElems = 32, kInFlight = 2;  // 32 floats per unit: fewer, or it spills
  uint4 q;
  float d;
  __device__ void load(const uint8_t* w, int64_t row, int64_t u, int64_t N, int64_t K) {
    q = __ldg(reinterpret_cast<const uint4*>(w + row * (K / 2) + u * 16));
    const auto* sc = reinterpret_cast<const unsigned short*>(w + N * K / 2);
    d = f16_bits_to_f32(__ldg(sc + row * (K / 32) + u));
  }
  __device__ void unpack(float* v) const {
    const uint32_t p[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int b = 0; b < 4; ++b) {
        const uint32_t byte = (p[i] >> (8 * b)) & 0xffu;
        v[4 * i + b] = d * static_cast<float>(static_cast<int>(byte & 0x0fu) - 8);
        v[4 * i + b + 16] = d * static_cast<float>(static_cast<int>(byte >> 4) - 8);
      }
  }
};

// kT: activation rows the kernel is built for (1, 2, 4 or 8); T <= kT are used.
template <class Unit, int kT>
__global__ void __launch_bounds__(kWarps * 32)
    gemv_kernel(float* __restrict__ out, const float* __restrict__ x, const uint8_t* __restrict__ w,
                int64_t N, int64_t K, int T) {
  const int lane = threadIdx.x & 31;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  if (row >= N) return;
  const int64_t units = K / Unit::kElems;
  float acc[kT];
#pragma unroll
  for (int t = 0; t < kT; ++t) acc[t] = 0.0f;
  for (int64_t u0 = lane; u0 < units; u0 += 32 * Unit::kInFlight) {
    Unit buf[Unit::kInFlight];
#pragma unroll
    for (int i = 0; i < Unit::kInFlight; ++i)
      if (u0 + i * 32 < units) buf[i].load(w, row, u0 + i * 32, N, K);
#pragma unroll
    for (int i = 0; i < Unit::kInFlight; ++i) {
      const int64_t u = u0 + i * 32;
      if (u >= units) break;
      float wv[Unit::kElems];
      buf[i].unpack(wv);
#pragma unroll
      for (int t = 0; t < kT; ++t) {
        if (t >= T) continue;
        const float4* xp = reinterpret_cast<const float4*>(x + t * K + u * Unit::kElems);
        float a = acc[t];
#pragma unroll
        for (int e = 0; e < Unit::kElems / 4; ++e) {
          const float4 xv = __ldg(xp + e);
          a += xv.x * wv[4 * e];
          a += xv.y * wv[4 * e + 1];
          a += xv.z * wv[4 * e + 2];
          a += xv.w * wv[4 * e + 3];
        }
        acc[t] = a;
      }
    }
  }
#pragma unroll
  for (int t = 0; t < kT; ++t) {
    if (t >= T) break;
    const float s = warp_sum(acc[t]);
    if (lane == 0) out[t * N + row] = s;
  }
}

// Any length and alignment, one element per lane step.
template <int kT>
__global__ void __launch_bounds__(kWarps * 32)
    gemv_scalar_kernel(float* __restrict__ out, const float* __restrict__ x, WeightRef w, int T) {
  const int lane = threadIdx.x & 31;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  if (row >= w.rows) return;
  const int64_t K = w.cols;
  float acc[kT];
#pragma unroll
  for (int t = 0; t < kT; ++t) acc[t] = 0.0f;
  for (int64_t k = lane; k < K; k += 32) {
    const float wv = weight_at(w, row, k);
#pragma unroll
    for (int t = 0; t < kT; ++t)
      if (t < T) acc[t] += x[t * K + k] * wv;
  }
#pragma unroll
  for (int t = 0; t < kT; ++t) {
    if (t >= T) break;
    const float s = warp_sum(acc[t]);
    if (lane == 0) out[t * w.rows + row] = s;
  }
}

template <class Unit>
void launch_vec(cudaStream_t s, float* out, const float* x, const Mat& w, int T) {
  const unsigned grid = static_cast<unsigned>((w.rows + kWarps - 1) / kWarps);
  const dim3 block(kWarps * 32);
  if (T == 1)
    gemv_kernel<Unit, 1><<<grid, block, 0, s>>>(out, x, w.data, w.rows, w.cols, T);
  else if (T == 2)
    gemv_kernel<Unit, 2><<<grid, block, 0, s>>>(out, x, w.data, w.rows, w.cols, T);
  else if (T <= 4)
    gemv_kernel<Unit, 4><<<grid, block, 0, s>>>(out, x, w.data, w.rows, w.cols, T);
  else
    gemv_kernel<Unit, 8><<<grid, block, 0, s>>>(out, x, w.data, w.rows, w.cols, T);
  FLASHRT_CUDA_LAUNCH_CHECK();
}

void launch_scalar(cudaStream_t s, float* out, const float* x, const Mat& w, int T) {
  const unsigned grid = static_cast<unsigned>((w.rows + kWarps - 1) / kWarps);
  const dim3 block(kWarps * 32);
  const WeightRef ref{w.data, w.dtype, w.rows, w.cols};
  if (T == 1)
    gemv_scalar_kernel<1><<<grid, block, 0, s>>>(out, x, ref, T);
  else if (T <= 4)
    gemv_scalar_kernel<4><<<grid, block, 0, s>>>(out, x, ref, T);
  else
    gemv_scalar_kernel<8><<<grid, block, 0, s>>>(out, x, ref, T);
  FLASHRT_CUDA_LAUNCH_CHECK();
}

}  // namespace

void gemv(cudaStream_t s, float* out, const float* x, const Mat& w, int T) {
  if (T < 1 || T > kGemvMaxT) throw_error("gemv: " + std::to_string(T) + " activation rows");
  if (w.rows == 0) return;
  const auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  // 16-byte units need every activation row and every weight row to start 16-byte aligned.
  const bool x_ok = aligned(x) && w.cols % 4 == 0 && aligned(w.data);
  switch (w.dtype) {
    case DType::BF16:
      if (x_ok && w.cols % 8 == 0) return launch_vec<Bf16Unit>(s, out, x, w, T);
      break;
    case DType::F16:
      if (x_ok && w.cols % 8 == 0) return launch_vec<F16Unit>(s, out, x, w, T);
      break;
    case DType::F32:
      if (x_ok) return launch_vec<F32Unit>(s, out, x, w, T);
      break;
    case DType::Q8_0:
      if (x_ok) return launch_vec<Q8Unit>(s, out, x, w, T);
      break;
    case DType::Q4_0:
      if (x_ok) return launch_vec<Q4Unit>(s, out, x, w, T);
      break;
    default:
      throw_error("the CUDA backend cannot multiply with " + std::string(dtype_name(w.dtype)) +
                  " weights");
  }
  launch_scalar(s, out, x, w, T);
}

}  // namespace flashrt::cuda

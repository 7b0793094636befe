// RMSNorm (plain and SiLU-gated) and rotate-half RoPE, computed as the CPU does: the sum of squares
// in double, cos/sin of the angles in double from the exact frequencies theta^(-2i/rot_dim), so the
// results match the CPU to the last bit or two.
#include "backends/cuda/check.h"
#include "backends/cuda/device_util.cuh"
#include "backends/cuda/kernels.h"

namespace flashrt::cuda {

namespace {

int norm_threads(int dim) {
  return dim >= 256 ? 256 : (dim + 31) / 32 * 32;
}

// One block per row. out may alias x: each element is read and written by the same thread.
// z (the gate) is null for the plain norm.
template <bool kGated>
__global__ void rmsnorm_kernel(float* out, int64_t out_stride, const float* x, int64_t x_stride,
                               const float* __restrict__ w, const float* __restrict__ z, int dim,
                               float eps) {
  __shared__ double red[32];
  const int64_t r = blockIdx.x;
  const float* xr = x + r * x_stride;
  float* o = out + r * out_stride;
  double ss = 0;
  for (int i = threadIdx.x; i < dim; i += blockDim.x) {
    const double v = xr[i];
    ss += v * v;
  }
  ss = block_sum(ss, red);
  const float s = static_cast<float>(1.0 / sqrt(ss / dim + static_cast<double>(eps)));
  for (int i = threadIdx.x; i < dim; i += blockDim.x) {
    if constexpr (kGated)
      o[i] = w[i] * (xr[i] * s) * silu(z[r * dim + i]);
    else
      o[i] = xr[i] * s * w[i];
  }
}

// One block per token: the token's cos/sin table in shared memory, then every head.
__global__ void rope_kernel(float* __restrict__ x, int heads, int head_dim, int rot_dim,
                            double theta, const int64_t* __restrict__ pos) {
  extern __shared__ float cs[];  // [half][2]
  const int half = rot_dim / 2;
  const int64_t t = blockIdx.x;
  const double p = static_cast<double>(pos[t]);
  for (int i = threadIdx.x; i < half; i += blockDim.x) {
    const double inv_freq = 1.0 / pow(theta, 2.0 * i / rot_dim);
    double sn, cn;
    sincos(p * inv_freq, &sn, &cn);
    cs[2 * i] = static_cast<float>(cn);
    cs[2 * i + 1] = static_cast<float>(sn);
  }
  __syncthreads();
  float* xt = x + t * heads * head_dim;
  for (int j = threadIdx.x; j < heads * half; j += blockDim.x) {
    const int h = j / half, i = j % half;
    float* v = xt + static_cast<int64_t>(h) * head_dim;
    const float x1 = v[i], x2 = v[i + half];
    const float co = cs[2 * i], si = cs[2 * i + 1];
    v[i] = x1 * co - x2 * si;
    v[i + half] = x2 * co + x1 * si;
  }
}

}  // namespace

void rmsnorm(cudaStream_t s, float* out, int64_t out_stride, const float* x, int64_t x_stride,
             const float* w, int rows, int dim, float eps) {
  rmsnorm_kernel<false>
      <<<rows, norm_threads(dim), 0, s>>>(out, out_stride, x, x_stride, w, nullptr, dim, eps);
  FLASHRT_CUDA_LAUNCH_CHECK();
}

void gated_rmsnorm(cudaStream_t s, float* out, const float* x, const float* z, const float* w,
                   int rows, int dim, float eps) {
  rmsnorm_kernel<true><<<rows, norm_threads(dim), 0, s>>>(out, dim, x, dim, w, z, dim, eps);
  FLASHRT_CUDA_LAUNCH_CHECK();
}

void rope(cudaStream_t s, float* x, int T, int heads, int head_dim, int rot_dim, double theta,
          const int64_t* pos) {
  const int half = rot_dim / 2;
  if (half == 0) return;
  const size_t smem = static_cast<size_t>(half) * 2 * sizeof(float);
  rope_kernel<<<T, 128, smem, s>>>(x, heads, head_dim, rot_dim, theta, pos);
  FLASHRT_CUDA_LAUNCH_CHECK();
}

}  // namespace flashrt::cuda

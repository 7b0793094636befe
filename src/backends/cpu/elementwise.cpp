// Norms, RoPE, activations and the causal depthwise convolution.
#include <cmath>
#include <vector>

#include "backends/cpu/kernels.h"

namespace flashrt::cpu {

namespace {
float inv_rms(const float* x, int dim, float eps) {
  double ss = 0;  // double: the sum of squares of a 1024..8192-wide row, once per row
  for (int i = 0; i < dim; ++i) ss += static_cast<double>(x[i]) * x[i];
  return static_cast<float>(1.0 / std::sqrt(ss / dim + eps));
}
}  // namespace

void rmsnorm(ThreadPool& pool, float* out, int64_t out_stride, const float* x, int64_t x_stride,
             const float* w, int rows, int dim, float eps) {
  pool.parallel_for(rows, 64, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * x_stride;
      float* o = out + r * out_stride;
      const float s = inv_rms(xr, dim, eps);
      for (int i = 0; i < dim; ++i) o[i] = xr[i] * s * w[i];
    }
  });
}

void gated_rmsnorm(ThreadPool& pool, float* out, const float* x, const float* z, const float* w, int rows,
                   int dim, float eps) {
  pool.parallel_for(rows, 64, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * dim;
      const float* zr = z + r * dim;
      float* o = out + r * dim;
      const float s = inv_rms(xr, dim, eps);
      for (int i = 0; i < dim; ++i) o[i] = w[i] * (xr[i] * s) * silu(zr[i]);
    }
  });
}

void rope(ThreadPool& pool, float* x, int T, int heads, int head_dim, int rot_dim, double theta, int64_t pos0) {
  const int half = rot_dim / 2;
  // cos/sin per (token, frequency) in double, from the exact frequencies theta^(-2i/rot_dim).
  std::vector<float> cs(static_cast<size_t>(T) * half * 2);
  for (int t = 0; t < T; ++t) {
    for (int i = 0; i < half; ++i) {
      const double inv_freq = 1.0 / std::pow(theta, 2.0 * i / rot_dim);
      const double a = static_cast<double>(pos0 + t) * inv_freq;
      cs[(static_cast<size_t>(t) * half + i) * 2] = static_cast<float>(std::cos(a));
      cs[(static_cast<size_t>(t) * half + i) * 2 + 1] = static_cast<float>(std::sin(a));
    }
  }
  pool.parallel_for(static_cast<int64_t>(T) * heads, 64, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t t = r / heads;
      float* v = x + r * head_dim;
      const float* c = cs.data() + t * half * 2;
      for (int i = 0; i < half; ++i) {
        const float x1 = v[i], x2 = v[i + half];
        const float co = c[2 * i], si = c[2 * i + 1];
        v[i] = x1 * co - x2 * si;
        v[i + half] = x2 * co + x1 * si;
      }
    }
  });
}

void sigmoid_gate(float* x, const float* gate, int rows, int dim, int64_t gate_stride) {
  for (int64_t r = 0; r < rows; ++r)
    for (int i = 0; i < dim; ++i) x[r * dim + i] *= sigmoid(gate[r * gate_stride + i]);
}

void swiglu(float* out, const float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = silu(gate[i]) * up[i];
}

void conv1d_silu(ThreadPool& pool, float* out, const float* x, float* conv_state, const float* w, int T,
                 int channels, int K) {
  const int hist = K - 1;
  pool.parallel_for(channels, 256, [&](int64_t c0, int64_t c1) {
    std::vector<float> win(static_cast<size_t>(hist + T));
    for (int64_t c = c0; c < c1; ++c) {
      // The channel's inputs: K-1 from the state (oldest first), then the T new ones.
      for (int j = 0; j < hist; ++j) win[static_cast<size_t>(j)] = conv_state[static_cast<int64_t>(j) * channels + c];
      for (int t = 0; t < T; ++t) win[static_cast<size_t>(hist + t)] = x[static_cast<int64_t>(t) * channels + c];
      const float* wc = w + c * K;
      for (int t = 0; t < T; ++t) {
        float s = 0;
        for (int j = 0; j < K; ++j) s += wc[j] * win[static_cast<size_t>(t + j)];
        out[static_cast<int64_t>(t) * channels + c] = silu(s);
      }
      for (int j = 0; j < hist; ++j) conv_state[static_cast<int64_t>(j) * channels + c] = win[static_cast<size_t>(T + j)];
    }
  });
}

}  // namespace flashrt::cpu

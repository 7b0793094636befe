// Norms, RoPE, activations and the causal depthwise convolution. With a vector kernel table the
// per-row / per-element work runs there; the scalar code below is the reference and the fallback.
#include <algorithm>
#include <cmath>
#include <map>
#include <utility>
#include <vector>

#include "backends/cpu/isa.h"
#include "backends/cpu/kernels.h"

namespace flashrt::cpu {

namespace {
float inv_rms(const float* x, int dim, float eps) {
  double ss = 0;  // double: the sum of squares of a 1024..8192-wide row, once per row
  for (int i = 0; i < dim; ++i) ss += static_cast<double>(x[i]) * x[i];
  return static_cast<float>(1.0 / std::sqrt(ss / dim + eps));
}

// Element-wise work over n values in chunks big enough to be worth a thread.
template <typename F>
void for_chunks(ThreadPool& pool, int64_t n, F&& f) {
  constexpr int64_t kChunk = 16384;
  if (n <= kChunk) {
    f(0, n);
    return;
  }
  pool.parallel_for((n + kChunk - 1) / kChunk, 1,
                    [&](int64_t c0, int64_t c1) { f(c0 * kChunk, std::min(c1 * kChunk, n)); });
}
}  // namespace

void rmsnorm(ThreadPool& pool, float* out, int64_t out_stride, const float* x, int64_t x_stride,
             const float* w, int rows, int dim, float eps) {
  const KernelTable* k = kernel_table();
  pool.parallel_for(rows, 64, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * x_stride;
      float* o = out + r * out_stride;
      if (k) {
        k->rmsnorm_row(o, xr, w, nullptr, dim, eps);
        continue;
      }
      const float s = inv_rms(xr, dim, eps);
      for (int i = 0; i < dim; ++i) o[i] = xr[i] * s * w[i];
    }
  });
}

void gated_rmsnorm(ThreadPool& pool, float* out, const float* x, const float* z, const float* w,
                   int rows, int dim, float eps) {
  const KernelTable* k = kernel_table();
  pool.parallel_for(rows, 64, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * dim;
      const float* zr = z + r * dim;
      float* o = out + r * dim;
      if (k) {
        k->rmsnorm_row(o, xr, w, zr, dim, eps);
        continue;
      }
      const float s = inv_rms(xr, dim, eps);
      for (int i = 0; i < dim; ++i) o[i] = w[i] * (xr[i] * s) * silu(zr[i]);
    }
  });
}

namespace {
// cos and sin of position * theta^(-2i/rot_dim), computed in double and kept per (theta, rot_dim)
// for the positions seen so far: a row depends on its absolute position only.
struct RopeTable {
  std::vector<float> cs;  // per position: cos[half], sin[half]
  int64_t positions = 0;
};

const float* rope_rows(double theta, int rot_dim, int64_t pos0, int T) {
  thread_local std::map<std::pair<double, int>, RopeTable> tables;
  RopeTable& tab = tables[{theta, rot_dim}];
  const int half = rot_dim / 2;
  if (pos0 + T > tab.positions) {
    const int64_t n = std::max<int64_t>(pos0 + T, tab.positions * 2);
    tab.cs.resize(static_cast<size_t>(n) * half * 2);
    std::vector<double> inv_freq(static_cast<size_t>(half));
    for (int i = 0; i < half; ++i)
      inv_freq[static_cast<size_t>(i)] = 1.0 / std::pow(theta, 2.0 * i / rot_dim);
    for (int64_t p = tab.positions; p < n; ++p) {
      float* row = tab.cs.data() + p * half * 2;
      for (int i = 0; i < half; ++i) {
        const double a = static_cast<double>(p) * inv_freq[static_cast<size_t>(i)];
        row[i] = static_cast<float>(std::cos(a));
        row[half + i] = static_cast<float>(std::sin(a));
      }
    }
    tab.positions = n;
  }
  return tab.cs.data() + pos0 * half * 2;
}
}  // namespace

void rope(ThreadPool& pool, float* x, int T, int heads, int head_dim, int rot_dim, double theta,
          int64_t pos0) {
  const int half = rot_dim / 2;
  const float* cs = rope_rows(theta, rot_dim, pos0, T);
  const KernelTable* k = kernel_table();
  pool.parallel_for(static_cast<int64_t>(T) * heads, 64, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t t = r / heads;
      float* v = x + r * head_dim;
      const float* c = cs + t * half * 2;
      if (k) {
        k->rope_head(v, c, half);
        continue;
      }
      for (int i = 0; i < half; ++i) {
        const float x1 = v[i], x2 = v[i + half];
        const float co = c[i], si = c[half + i];
        v[i] = x1 * co - x2 * si;
        v[i + half] = x2 * co + x1 * si;
      }
    }
  });
}

void sigmoid_gate(ThreadPool& pool, float* x, const float* gate, int rows, int dim,
                  int64_t gate_stride) {
  const KernelTable* k = kernel_table();
  pool.parallel_for(rows, std::max(1, 16384 / std::max(dim, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      float* xr = x + r * dim;
      const float* g = gate + r * gate_stride;
      if (k) {
        k->sigmoid_mul(xr, g, dim);
        continue;
      }
      for (int i = 0; i < dim; ++i) xr[i] *= sigmoid(g[i]);
    }
  });
}

void swiglu(ThreadPool& pool, float* out, const float* gate, const float* up, int64_t n) {
  const KernelTable* k = kernel_table();
  for_chunks(pool, n, [&](int64_t i0, int64_t i1) {
    if (k) {
      k->swiglu(out + i0, gate + i0, up + i0, i1 - i0);
      return;
    }
    for (int64_t i = i0; i < i1; ++i) out[i] = silu(gate[i]) * up[i];
  });
}

void add(ThreadPool& pool, float* x, const float* y, int64_t n) {
  const KernelTable* k = kernel_table();
  for_chunks(pool, n, [&](int64_t i0, int64_t i1) {
    if (k) {
      k->add(x + i0, y + i0, i1 - i0);
      return;
    }
    for (int64_t i = i0; i < i1; ++i) x[i] += y[i];
  });
}

void conv1d_silu(ThreadPool& pool, float* out, const float* x, float* conv_state, const float* w,
                 int T, int channels, int K) {
  const KernelTable* kt = kernel_table();
  if (kt) {
    thread_local std::vector<float> wt;  // [K, C]
    wt.resize(static_cast<size_t>(K) * channels);
    for (int c = 0; c < channels; ++c)
      for (int j = 0; j < K; ++j)
        wt[static_cast<size_t>(j) * channels + c] = w[static_cast<int64_t>(c) * K + j];
    const float* wtp = wt.data();  // (the workers see their own thread_local vector)
    pool.parallel_for((channels + 15) / 16, 8, [&](int64_t g0, int64_t g1) {
      kt->conv1d_silu(out, x, conv_state, wtp, T, channels, K, static_cast<int>(g0 * 16),
                      static_cast<int>(std::min<int64_t>(g1 * 16, channels)));
    });
    return;
  }
  const int hist = K - 1;
  pool.parallel_for(channels, 256, [&](int64_t c0, int64_t c1) {
    std::vector<float> win(static_cast<size_t>(hist + T));
    for (int64_t c = c0; c < c1; ++c) {
      // The channel's inputs: K-1 from the state (oldest first), then the T new ones.
      for (int j = 0; j < hist; ++j)
        win[static_cast<size_t>(j)] = conv_state[static_cast<int64_t>(j) * channels + c];
      for (int t = 0; t < T; ++t)
        win[static_cast<size_t>(hist + t)] = x[static_cast<int64_t>(t) * channels + c];
      const float* wc = w + c * K;
      for (int t = 0; t < T; ++t) {
        float s = 0;
        for (int j = 0; j < K; ++j) s += wc[j] * win[static_cast<size_t>(t + j)];
        out[static_cast<int64_t>(t) * channels + c] = silu(s);
      }
      for (int j = 0; j < hist; ++j)
        conv_state[static_cast<int64_t>(j) * channels + c] = win[static_cast<size_t>(T + j)];
    }
  });
}

}  // namespace flashrt::cpu

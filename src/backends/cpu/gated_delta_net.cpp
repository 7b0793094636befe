// Gated DeltaNet, per value head h (key head kh), in f32:
//   q, k l2-normalised, q scaled by 1/sqrt(dk); beta = sigmoid(b); g = -exp(A_log) * softplus(a +
//   dt_bias) S = exp(g) S;  d = beta (v - S^T k);  S += k d^T;  o = S^T q
// Two evaluations: the recurrence (token by token) and the chunked form (chunks of 64 aligned to
// absolute positions) that is mathematically the same recurrence.
#include <algorithm>
#include <cmath>
#include <vector>

#include "backends/cpu/isa.h"
#include "backends/cpu/kernels.h"

namespace flashrt::cpu {

namespace {

constexpr int kChunk = 64;

float softplus(float x) {
  return x > 20.0f ? x : std::log1p(std::exp(x));
}

void l2norm(float* x, int n, float scale) {
  float ss = 0;
  for (int i = 0; i < n; ++i) ss += x[i] * x[i];
  const float s = scale / std::sqrt(ss + 1e-6f);
  for (int i = 0; i < n; ++i) x[i] *= s;
}

int key_head(const GdnArgs& a, int h) {
  return a.tiled_heads ? h % a.n_k_heads : h / (a.n_v_heads / a.n_k_heads);
}

// Normalised q, k and v, beta, g of head h for tokens [t0, t0 + L).
struct HeadInputs {
  std::vector<float> q, k, v, beta, g;
  void load(const GdnArgs& a, int h, int t0, int L) {
    const int dk = a.k_dim, dv = a.v_dim, kh = key_head(a, h);
    q.resize(static_cast<size_t>(L) * dk);
    k.resize(static_cast<size_t>(L) * dk);
    v.resize(static_cast<size_t>(L) * dv);
    beta.resize(static_cast<size_t>(L));
    g.resize(static_cast<size_t>(L));
    const int64_t k_off = static_cast<int64_t>(a.n_k_heads) * dk;
    const int64_t v_off = 2 * k_off;
    const float q_scale = 1.0f / std::sqrt(static_cast<float>(dk));
    for (int i = 0; i < L; ++i) {
      const float* row = a.qkv + static_cast<int64_t>(t0 + i) * a.qkv_stride;
      std::copy_n(row + static_cast<int64_t>(kh) * dk, dk, q.data() + static_cast<int64_t>(i) * dk);
      std::copy_n(row + k_off + static_cast<int64_t>(kh) * dk, dk,
                  k.data() + static_cast<int64_t>(i) * dk);
      std::copy_n(row + v_off + static_cast<int64_t>(h) * dv, dv,
                  v.data() + static_cast<int64_t>(i) * dv);
      l2norm(q.data() + static_cast<int64_t>(i) * dk, dk, q_scale);
      l2norm(k.data() + static_cast<int64_t>(i) * dk, dk, 1.0f);
      const int64_t hi = static_cast<int64_t>(t0 + i) * a.n_v_heads + h;
      beta[static_cast<size_t>(i)] = sigmoid(a.beta[hi]);
      g[static_cast<size_t>(i)] = a.a_neg[h] * softplus(a.alpha[hi] + a.dt_bias[h]);
    }
  }
};

}  // namespace

void gdn_recurrent(ThreadPool& pool, const GdnArgs& a, int T, float* state) {
  const int dk = a.k_dim, dv = a.v_dim;
  const KernelTable* kt = kernel_table();
  pool.parallel_for(a.n_v_heads, 1, [&](int64_t h0, int64_t h1) {
    HeadInputs in;
    std::vector<float> m(static_cast<size_t>(dv)), o(static_cast<size_t>(dv)), decay;
    for (int64_t hh = h0; hh < h1; ++hh) {
      const int h = static_cast<int>(hh);
      float* S = state + static_cast<int64_t>(h) * dk * dv;
      in.load(a, h, 0, T);
      if (kt) {  // vectorised over dv, the state slice resident in L1 across the tokens
        decay.resize(static_cast<size_t>(T));
        for (int t = 0; t < T; ++t)
          decay[static_cast<size_t>(t)] = std::exp(in.g[static_cast<size_t>(t)]);
        kt->gdn_head(S, in.q.data(), in.k.data(), in.v.data(), decay.data(), in.beta.data(), T, dk,
                     dv, a.out + static_cast<int64_t>(h) * dv,
                     static_cast<int64_t>(a.n_v_heads) * dv);
        continue;
      }
      for (int t = 0; t < T; ++t) {
        const float* q = in.q.data() + static_cast<int64_t>(t) * dk;
        const float* k = in.k.data() + static_cast<int64_t>(t) * dk;
        const float* v = in.v.data() + static_cast<int64_t>(t) * dv;
        const float decay_t = std::exp(in.g[static_cast<size_t>(t)]),
                    beta = in.beta[static_cast<size_t>(t)];
        std::fill(m.begin(), m.end(), 0.0f);
        for (int i = 0; i < dk; ++i) {  // S *= decay; m = S^T k
          float* Si = S + static_cast<int64_t>(i) * dv;
          const float ki = k[i];
          for (int j = 0; j < dv; ++j) {
            Si[j] *= decay_t;
            m[static_cast<size_t>(j)] += Si[j] * ki;
          }
        }
        for (int j = 0; j < dv; ++j)
          m[static_cast<size_t>(j)] = beta * (v[j] - m[static_cast<size_t>(j)]);  // d
        std::fill(o.begin(), o.end(), 0.0f);
        for (int i = 0; i < dk; ++i) {  // S += k d^T; o = S^T q
          float* Si = S + static_cast<int64_t>(i) * dv;
          const float ki = k[i], qi = q[i];
          for (int j = 0; j < dv; ++j) {
            Si[j] += ki * m[static_cast<size_t>(j)];
            o[static_cast<size_t>(j)] += Si[j] * qi;
          }
        }
        std::copy(o.begin(), o.end(), a.out + (static_cast<int64_t>(t) * a.n_v_heads + h) * dv);
      }
    }
  });
}

void gdn_chunked(ThreadPool& pool, const GdnArgs& a, int T, float* state, int64_t pos0) {
  const int dk = a.k_dim, dv = a.v_dim;
  pool.parallel_for(a.n_v_heads, 1, [&](int64_t h0, int64_t h1) {
    HeadInputs in;
    std::vector<float> gc, A, U, W, vnew, Sq;
    for (int64_t hh = h0; hh < h1; ++hh) {
      const int h = static_cast<int>(hh);
      float* S = state + static_cast<int64_t>(h) * dk * dv;
      int t0 = 0;
      while (t0 < T) {
        // Chunks end at absolute multiples of 64, so the same positions always share a chunk.
        const int64_t p = pos0 + t0;
        const int L = static_cast<int>(std::min<int64_t>(kChunk - p % kChunk, T - t0));
        in.load(a, h, t0, L);
        const float* q = in.q.data();
        const float* k = in.k.data();
        const float* v = in.v.data();
        gc.assign(static_cast<size_t>(L), 0.0f);
        float run = 0;
        for (int i = 0; i < L; ++i)
          gc[static_cast<size_t>(i)] = run += in.g[static_cast<size_t>(i)];
        // A[i][j] = -beta_i (k_i . k_j) exp(gc_i - gc_j) for j < i, then (I - A)^-1 by
        // substitution.
        A.assign(static_cast<size_t>(L) * L, 0.0f);
        for (int i = 0; i < L; ++i)
          for (int j = 0; j < i; ++j)
            A[static_cast<size_t>(i) * L + j] =
                -in.beta[static_cast<size_t>(i)] *
                dot_f32(k + static_cast<int64_t>(i) * dk, k + static_cast<int64_t>(j) * dk, dk) *
                std::exp(gc[static_cast<size_t>(i)] - gc[static_cast<size_t>(j)]);
        for (int i = 1; i < L; ++i) {
          for (int j = 0; j < i; ++j) {
            float s = A[static_cast<size_t>(i) * L + j];
            for (int m = j + 1; m < i; ++m)
              s += A[static_cast<size_t>(i) * L + m] * A[static_cast<size_t>(m) * L + j];
            A[static_cast<size_t>(i) * L + j] = s;
          }
        }
        for (int i = 0; i < L; ++i) A[static_cast<size_t>(i) * L + i] = 1.0f;
        // U = A (beta v), W = A (beta k exp(gc))
        U.assign(static_cast<size_t>(L) * dv, 0.0f);
        W.assign(static_cast<size_t>(L) * dk, 0.0f);
        for (int i = 0; i < L; ++i) {
          for (int j = 0; j <= i; ++j) {
            const float aij = A[static_cast<size_t>(i) * L + j];
            const float bj = in.beta[static_cast<size_t>(j)];
            const float wv = aij * bj, wk = aij * bj * std::exp(gc[static_cast<size_t>(j)]);
            for (int d = 0; d < dv; ++d)
              U[static_cast<size_t>(i) * dv + d] += wv * v[static_cast<int64_t>(j) * dv + d];
            for (int d = 0; d < dk; ++d)
              W[static_cast<size_t>(i) * dk + d] += wk * k[static_cast<int64_t>(j) * dk + d];
          }
        }
        // v_new = U - W S;   out = (q exp(gc)) S + (q k^T * decay, causal) v_new
        vnew.assign(static_cast<size_t>(L) * dv, 0.0f);
        Sq.assign(static_cast<size_t>(L) * dv, 0.0f);
        for (int i = 0; i < L; ++i) {
          float* vi = vnew.data() + static_cast<int64_t>(i) * dv;
          float* oi = Sq.data() + static_cast<int64_t>(i) * dv;
          const float eg = std::exp(gc[static_cast<size_t>(i)]);
          for (int r = 0; r < dk; ++r) {
            const float wr = W[static_cast<size_t>(i) * dk + r],
                        qr = q[static_cast<int64_t>(i) * dk + r] * eg;
            const float* Sr = S + static_cast<int64_t>(r) * dv;
            for (int d = 0; d < dv; ++d) {
              vi[d] -= wr * Sr[d];
              oi[d] += qr * Sr[d];
            }
          }
          for (int d = 0; d < dv; ++d) vi[d] += U[static_cast<size_t>(i) * dv + d];
        }
        for (int i = 0; i < L; ++i) {
          float* oi = Sq.data() + static_cast<int64_t>(i) * dv;
          for (int j = 0; j <= i; ++j) {
            const float s =
                dot_f32(q + static_cast<int64_t>(i) * dk, k + static_cast<int64_t>(j) * dk, dk) *
                std::exp(gc[static_cast<size_t>(i)] - gc[static_cast<size_t>(j)]);
            const float* vj = vnew.data() + static_cast<int64_t>(j) * dv;
            for (int d = 0; d < dv; ++d) oi[d] += s * vj[d];
          }
          std::copy_n(oi, dv, a.out + (static_cast<int64_t>(t0 + i) * a.n_v_heads + h) * dv);
        }
        // S = exp(gc_last) S + sum_j exp(gc_last - gc_j) k_j v_new_j^T
        const float glast = gc[static_cast<size_t>(L - 1)], elast = std::exp(glast);
        for (int r = 0; r < dk; ++r) {
          float* Sr = S + static_cast<int64_t>(r) * dv;
          for (int d = 0; d < dv; ++d) Sr[d] *= elast;
          for (int j = 0; j < L; ++j) {
            const float kr =
                k[static_cast<int64_t>(j) * dk + r] * std::exp(glast - gc[static_cast<size_t>(j)]);
            const float* vj = vnew.data() + static_cast<int64_t>(j) * dv;
            for (int d = 0; d < dv; ++d) Sr[d] += kr * vj[d];
          }
        }
        t0 += L;
      }
    }
  });
}

}  // namespace flashrt::cpu

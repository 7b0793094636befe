// Gated DeltaNet on the device, two evaluations of the same recurrence as the CPU kernels
// (backends/cpu/gated_delta_net.cpp has the math). Per value head h (key head kh), in f32:
//   q, k l2-normalised, q scaled by 1/sqrt(dk); beta = sigmoid(b); g = -exp(A_log) softplus(a + dt)
//   S = e^g S;  d = beta (v - S^T k);  S += k d^T;  o = S^T q
// Column j of S [dk, dv] evolves on its own (it needs only v_j), so both kernels split the value
// dimension across blocks: grid (Hv, dv / columns per block).
//  - Recurrent (decode, short runs, GdnMode::kRecurrent): 4 threads per column hold its dk rows in
//    registers for the whole run; per token the block stages q and k in shared memory, and the
//    column sums S^T k and S^T q are 4-lane shuffles. Exact at every token boundary.
//  - Chunked (prefill): chunks of 64 tokens aligned to absolute positions, as on the CPU: per chunk
//    the block builds A = -beta (K K^T) decay (strictly lower), inverts (I - A) by forward
//    substitution, forms W = T beta e^gc K and U = T beta V, then v_new = U - W S,
//    out = (q e^gc) S + (Q K^T decay, causal) v_new, S = e^gc_last S + sum_j e^(gc_last-gc_j) k_j
//    v_new_j. Everything of a chunk (Q, K, W, A, QK^T, V, the state slice) lives in shared memory
//    (~158 KB at dk = 128); key sizes that do not fit fall back to the recurrent kernel.
#include <algorithm>

#include "backends/cuda/check.h"
#include "backends/cuda/device_util.cuh"
#include "backends/cuda/kernels.h"

namespace flashrt::cuda {

namespace {

struct Params {
  const float* qkv;
  int64_t qkv_stride;
  const float* alpha;
  const float* beta;
  const float* a_neg;
  const float* dt_bias;
  SlotRef slot;  // the sequence's slot: its recurrent state at state_off
  size_t state_off;
  float* out;
  const int64_t* pos;
  int T, Hk, Hv, dk, dv;
  bool tiled;
};

Params params(const GdnArgs& a, int T, SlotRef slot, const int64_t* pos) {
  return {a.qkv,       a.qkv_stride, a.alpha, a.beta,       a.a_neg, a.dt_bias,
          slot,        a.state,      a.out,   pos,          T,       a.n_k_heads,
          a.n_v_heads, a.k_dim,      a.v_dim, a.tiled_heads};
}

__device__ __forceinline__ int key_head(const Params& p, int h) {
  return p.tiled ? h % p.Hk : h / (p.Hv / p.Hk);
}

// ---- recurrent ----

constexpr int kSub = 4;     // threads per state column
constexpr int kRCols = 32;  // state columns per block (128 threads)

// kR state rows per thread: rows sub, sub + 4, ... (dk <= 4 * kR).
template <int kR>
__global__ void __launch_bounds__(kRCols* kSub) gdn_recurrent_kernel(Params p) {
  extern __shared__ float qk[];  // q [dk], k [dk] of the current token
  __shared__ float red[2][32];
  const int h = blockIdx.x, kh = key_head(p, h), dk = p.dk, dv = p.dv;
  const int col = blockIdx.y * kRCols + threadIdx.x / kSub, sub = threadIdx.x % kSub;
  const bool active = col < dv;
  float* qs = qk;
  float* ks = qk + dk;
  float* Sg = slot_region<float>(p.slot, p.state_off) + static_cast<int64_t>(h) * dk * dv;
  float S[kR];
#pragma unroll
  for (int r = 0; r < kR; ++r) {
    const int i = sub + kSub * r;
    S[r] = active && i < dk ? Sg[static_cast<int64_t>(i) * dv + col] : 0.0f;
  }
  const int64_t k_off = static_cast<int64_t>(p.Hk) * dk, v_off = 2 * k_off;
  const float q_scale = 1.0f / sqrtf(static_cast<float>(dk));
  for (int t = 0; t < p.T; ++t) {
    const float* row = p.qkv + t * p.qkv_stride;
    float sq = 0.0f, sk = 0.0f;
    for (int i = threadIdx.x; i < dk; i += blockDim.x) {
      const float a = row[static_cast<int64_t>(kh) * dk + i];
      const float b = row[k_off + static_cast<int64_t>(kh) * dk + i];
      qs[i] = a;
      ks[i] = b;
      sq += a * a;
      sk += b * b;
    }
    sq = block_sum(sq, red[0]);  // its barriers also publish qs and ks
    sk = block_sum(sk, red[1]);
    const float fq = q_scale / sqrtf(sq + 1e-6f), fk = 1.0f / sqrtf(sk + 1e-6f);
    const int64_t hi = static_cast<int64_t>(t) * p.Hv + h;
    const float beta = sigmoid(p.beta[hi]);
    const float decay = expf(p.a_neg[h] * softplus(p.alpha[hi] + p.dt_bias[h]));
    const float v = active ? row[v_off + static_cast<int64_t>(h) * dv + col] : 0.0f;
    float m = 0.0f;  // (S^T k)_col
#pragma unroll
    for (int r = 0; r < kR; ++r) {
      const int i = sub + kSub * r;
      const float kk = i < dk ? ks[i] * fk : 0.0f;
      S[r] *= decay;
      m += S[r] * kk;
    }
    m += __shfl_xor_sync(0xffffffffu, m, 1);
    m += __shfl_xor_sync(0xffffffffu, m, 2);
    const float d = beta * (v - m);
    float o = 0.0f;  // (S^T q)_col
#pragma unroll
    for (int r = 0; r < kR; ++r) {
      const int i = sub + kSub * r;
      const float kk = i < dk ? ks[i] * fk : 0.0f;
      const float qq = i < dk ? qs[i] * fq : 0.0f;
      S[r] += kk * d;
      o += S[r] * qq;
    }
    o += __shfl_xor_sync(0xffffffffu, o, 1);
    o += __shfl_xor_sync(0xffffffffu, o, 2);
    if (active && sub == 0) p.out[hi * dv + col] = o;
    __syncthreads();  // everyone is done with this token's q and k
  }
#pragma unroll
  for (int r = 0; r < kR; ++r) {
    const int i = sub + kSub * r;
    if (active && i < dk) Sg[static_cast<int64_t>(i) * dv + col] = S[r];
  }
}

template <int kR>
void launch_recurrent(cudaStream_t s, const Params& p) {
  const dim3 grid(p.Hv, (p.dv + kRCols - 1) / kRCols);
  gdn_recurrent_kernel<kR><<<grid, kRCols * kSub, 2 * p.dk * sizeof(float), s>>>(p);
  FLASHRT_CUDA_LAUNCH_CHECK();
}

// ---- chunked ----

constexpr int kChunk = 64;
constexpr int kCThreads = 256;
constexpr int kVB = 32;                               // state columns per block
constexpr int kPerThread = kChunk * kVB / kCThreads;  // (token, column) pairs per thread
constexpr int kLd = kChunk + 1;                       // row stride of the 64 x 64 matrices

size_t chunked_floats(int dk) {
  const size_t P = static_cast<size_t>(dk) + 1;  // padded rows: column walks hit distinct banks
  return 3 * kChunk * P + 2 * kChunk * kLd + kChunk * kVB + static_cast<size_t>(dk) * kVB +
         5 * kChunk;
}

__global__ void __launch_bounds__(kCThreads) gdn_chunked_kernel(Params p) {
  extern __shared__ float sm[];
  const int dk = p.dk, dv = p.dv, P = dk + 1;
  float* Qs = sm;                 // [64][P] q, normalised and scaled
  float* Ks = Qs + kChunk * P;    // [64][P] k, normalised
  float* Ws = Ks + kChunk * P;    // [64][P] W = T diag(beta e^gc) K
  float* A = Ws + kChunk * P;     // [64][kLd] -beta k.k decay, then T = (I - A)^-1
  float* QK = A + kChunk * kLd;   // [64][kLd] q.k decay, causal
  float* Vs = QK + kChunk * kLd;  // [64][kVB] v, then U, then v_new
  float* Ss = Vs + kChunk * kVB;  // [dk][kVB] this block's state columns
  float* gc = Ss + dk * kVB;      // [64] cumulative g
  float* bt = gc + kChunk;        // [64] beta
  float* eg = bt + kChunk;        // [64] e^gc
  float* el = eg + kChunk;        // [64] e^(gc_last - gc)
  float* tmp = el + kChunk;       // [64] g, then one row of A
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int h = blockIdx.x, kh = key_head(p, h), c0 = blockIdx.y * kVB;
  const int vb = min(kVB, dv - c0);
  float* Sg = slot_region<float>(p.slot, p.state_off) + static_cast<int64_t>(h) * dk * dv;
  const int64_t k_off = static_cast<int64_t>(p.Hk) * dk, v_off = 2 * k_off;
  const float q_scale = 1.0f / sqrtf(static_cast<float>(dk));

  for (int e = tid; e < dk * kVB; e += kCThreads) {
    const int r = e / kVB, c = e % kVB;
    Ss[e] = c < vb ? Sg[static_cast<int64_t>(r) * dv + c0 + c] : 0.0f;
  }
  const int64_t pos0 = *p.pos;
  for (int t0 = 0; t0 < p.T;) {
    // Chunks end at absolute multiples of 64, so the same positions always share a chunk.
    const int64_t pp = pos0 + t0;
    const int L = static_cast<int>(
        min(static_cast<int64_t>(kChunk - pp % kChunk), static_cast<int64_t>(p.T - t0)));
    __syncthreads();  // the previous chunk is finished with every buffer

    // 1. q, k, v, beta, g of the chunk's tokens.
    for (int e = tid; e < L * dk; e += kCThreads) {
      const int i = e / dk, d = e % dk;
      const float* row = p.qkv + (t0 + i) * p.qkv_stride;
      Qs[i * P + d] = row[static_cast<int64_t>(kh) * dk + d];
      Ks[i * P + d] = row[k_off + static_cast<int64_t>(kh) * dk + d];
    }
    for (int e = tid; e < L * kVB; e += kCThreads) {
      const int i = e / kVB, c = e % kVB;
      const float* row = p.qkv + (t0 + i) * p.qkv_stride;
      Vs[e] = c < vb ? row[v_off + static_cast<int64_t>(h) * dv + c0 + c] : 0.0f;
    }
    if (tid < L) {
      const int64_t hi = static_cast<int64_t>(t0 + tid) * p.Hv + h;
      bt[tid] = sigmoid(p.beta[hi]);
      tmp[tid] = p.a_neg[h] * softplus(p.alpha[hi] + p.dt_bias[h]);
    }
    __syncthreads();

    // 2. l2-normalise q and k (a warp per token); cumulative g.
    for (int i = warp; i < L; i += kCThreads / 32) {
      float sq = 0.0f, sk = 0.0f;
      for (int d = lane; d < dk; d += 32) {
        sq += Qs[i * P + d] * Qs[i * P + d];
        sk += Ks[i * P + d] * Ks[i * P + d];
      }
      sq = warp_sum(sq);
      sk = warp_sum(sk);
      const float fq = q_scale / sqrtf(sq + 1e-6f), fk = 1.0f / sqrtf(sk + 1e-6f);
      for (int d = lane; d < dk; d += 32) {
        Qs[i * P + d] *= fq;
        Ks[i * P + d] *= fk;
      }
    }
    if (tid == 0) {
      float run = 0.0f;
      for (int i = 0; i < L; ++i) gc[i] = run += tmp[i];
    }
    __syncthreads();
    if (tid < L) {
      eg[tid] = expf(gc[tid]);
      el[tid] = expf(gc[L - 1] - gc[tid]);
    }

    // 3. A[i][j] = -beta_i (k_i . k_j) e^(gc_i - gc_j) for j < i; QK[i][j] = (q_i . k_j) e^(...), j
    // <= i.
    for (int e = tid; e < L * L; e += kCThreads) {
      const int i = e / L, j = e % L;
      float a = 0.0f, b = 0.0f;
      if (j <= i) {
        float kk = 0.0f, qk = 0.0f;
        for (int d = 0; d < dk; ++d) {
          const float kj = Ks[j * P + d];
          kk += Ks[i * P + d] * kj;
          qk += Qs[i * P + d] * kj;
        }
        const float dec = expf(gc[i] - gc[j]);
        if (j < i) a = -bt[i] * kk * dec;
        b = qk * dec;
      }
      A[i * kLd + j] = a;
      QK[i * kLd + j] = b;
    }
    __syncthreads();

    // 4. T = (I - A)^-1 by forward substitution, a row at a time:
    //    T[i][j] = A[i][j] + sum_{j<m<i} A[i][m] T[m][j]   (row i of A as it was: kept in tmp).
    for (int i = 1; i < L; ++i) {
      if (tid < i) tmp[tid] = A[i * kLd + tid];
      __syncthreads();
      if (tid < i) {
        float s = tmp[tid];
        for (int m = tid + 1; m < i; ++m) s += tmp[m] * A[m * kLd + tid];
        A[i * kLd + tid] = s;
      }
      __syncthreads();
    }
    if (tid < L) A[tid * kLd + tid] = 1.0f;
    __syncthreads();

    // 5. W = T diag(beta e^gc) K;  U = T diag(beta) V (kept in registers until V is consumed).
    for (int e = tid; e < L * dk; e += kCThreads) {
      const int i = e / dk, d = e % dk;
      float w = 0.0f;
      for (int j = 0; j <= i; ++j) w += A[i * kLd + j] * bt[j] * eg[j] * Ks[j * P + d];
      Ws[i * P + d] = w;
    }
    float u[kPerThread], o[kPerThread];
#pragma unroll
    for (int n = 0; n < kPerThread; ++n) {
      const int e = tid + n * kCThreads, i = e / kVB, c = e % kVB;
      u[n] = 0.0f;
      if (i < L)
        for (int j = 0; j <= i; ++j) u[n] += A[i * kLd + j] * bt[j] * Vs[j * kVB + c];
    }
    __syncthreads();

    // 6. v_new = U - W S and the inter-chunk part of the output, (q e^gc) S.
#pragma unroll
    for (int n = 0; n < kPerThread; ++n) {
      const int e = tid + n * kCThreads, i = e / kVB, c = e % kVB;
      o[n] = 0.0f;
      if (i < L) {
        float vn = 0.0f, on = 0.0f;
        for (int r = 0; r < dk; ++r) {
          const float s = Ss[r * kVB + c];
          vn -= Ws[i * P + r] * s;
          on += Qs[i * P + r] * eg[i] * s;
        }
        Vs[e] = vn + u[n];
        o[n] = on;
      }
    }
    __syncthreads();

    // 7. The intra-chunk part: out_i += sum_{j<=i} QK[i][j] v_new_j.
#pragma unroll
    for (int n = 0; n < kPerThread; ++n) {
      const int e = tid + n * kCThreads, i = e / kVB, c = e % kVB;
      if (i < L && c < vb) {
        float on = o[n];
        for (int j = 0; j <= i; ++j) on += QK[i * kLd + j] * Vs[j * kVB + c];
        p.out[(static_cast<int64_t>(t0 + i) * p.Hv + h) * dv + c0 + c] = on;
      }
    }

    // 8. S = e^gc_last S + sum_j e^(gc_last - gc_j) k_j v_new_j^T (reads only what 6 left).
    const float elast = eg[L - 1];
    for (int e = tid; e < dk * kVB; e += kCThreads) {
      const int r = e / kVB, c = e % kVB;
      float s = Ss[e] * elast;
      for (int j = 0; j < L; ++j) s += Ks[j * P + r] * el[j] * Vs[j * kVB + c];
      Ss[e] = s;
    }
    t0 += L;
  }
  __syncthreads();
  for (int e = tid; e < dk * kVB; e += kCThreads) {
    const int r = e / kVB, c = e % kVB;
    if (c < vb) Sg[static_cast<int64_t>(r) * dv + c0 + c] = Ss[e];
  }
}

}  // namespace

void gdn_recurrent(cudaStream_t s, const GdnArgs& a, int T, SlotRef slot, const int64_t* pos) {
  const Params p = params(a, T, slot, pos);
  if (p.dk <= 8)
    launch_recurrent<2>(s, p);
  else if (p.dk <= 16)
    launch_recurrent<4>(s, p);
  else if (p.dk <= 32)
    launch_recurrent<8>(s, p);
  else if (p.dk <= 64)
    launch_recurrent<16>(s, p);
  else if (p.dk <= 128)
    launch_recurrent<32>(s, p);
  else if (p.dk <= 256)
    launch_recurrent<64>(s, p);
  else
    throw_error("gated delta net: key head size " + std::to_string(p.dk) + " (at most 256)");
}

size_t gdn_chunked_smem(int k_dim) {
  return chunked_floats(k_dim) * sizeof(float);
}

void gdn_chunked_init(size_t max_smem) {
  FLASHRT_CUDA_CHECK(cudaFuncSetAttribute(
      gdn_chunked_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(max_smem)));
}

void gdn_chunked(cudaStream_t s, const GdnArgs& a, int T, SlotRef slot, const int64_t* pos) {
  const Params p = params(a, T, slot, pos);
  const dim3 grid(p.Hv, (p.dv + kVB - 1) / kVB);
  gdn_chunked_kernel<<<grid, kCThreads, gdn_chunked_smem(p.dk), s>>>(p);
  FLASHRT_CUDA_LAUNCH_CHECK();
}

}  // namespace flashrt::cuda

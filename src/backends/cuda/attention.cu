// Causal GQA softmax attention of one sequence over its slot's contiguous f32 KV cache: query t
// (absolute position pos[0] + t) of head h reads cache rows [0, pos[0] + t] of KV head h / group.
//
// One kernel serves decode and prefill (flash-decoding style). A block takes one KV head, a run of
// up to kQB queries of that head's group (so each K/V row it loads serves all of them) and one
// split of the keys: a fixed number of splits per shape, each covering 1/splits of the keys the
// block's queries can see. The grid depends only on (T, heads), never on *pos, so a captured decode
// step replays correctly as the context grows: blocks past the end find an empty range and exit.
// Each of the block's 4 warps walks every 4th key with an online softmax (lanes hold head
// dimensions lane, lane + 32, ...; a key's score is a warp-shuffle sum), the warps are merged in
// shared memory, and with several splits a second kernel merges the splits' (max, sum, acc).
// Prefill gets its parallelism from the query blocks and uses one split. Correctness first: f32 on
// the CUDA cores, not a tensor-core flash-attention.
#include <algorithm>

#include "backends/cuda/check.h"
#include "backends/cuda/device_util.cuh"
#include "backends/cuda/kernels.h"

namespace flashrt::cuda {

namespace {

constexpr int kWarps = 4;
constexpr int kMaxSplits = 256;
constexpr int kMaxHeadDim = 256;

struct Params {
  float* out;
  const float* q;
  SlotRef slot;  // the sequence's slot: its caches at k_off and v_off
  size_t k_off, v_off;
  float* part;  // splits > 1: acc [splits][T*Hq][hd], then max and sum [splits][T*Hq] each
  const int64_t* pos;
  int T, Hq, Hkv, hd, group, splits;
  float scale;
};

// Queries per block: all of a decode step's group where registers allow.
int queries_per_block(int hd) {
  return hd > 128 ? 4 : 8;
}

// kDPL head dimensions per lane (hd <= 32 * kDPL), kQB queries per block.
template <int kDPL, int kQB>
__global__ void __launch_bounds__(kWarps * 32) attention_kernel(Params p) {
  __shared__ float s_acc[kWarps][kQB][kDPL * 32];
  __shared__ float s_m[kWarps][kQB], s_l[kWarps][kQB];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int kh = blockIdx.y, split = blockIdx.z;
  const int qi0 = blockIdx.x * kQB;  // query index within the KV head: t * group + g
  const int nq = min(kQB, p.T * p.group - qi0);
  const int64_t pos0 = *p.pos;
  const int64_t kv_stride = static_cast<int64_t>(p.Hkv) * p.hd;
  const float* kc = slot_region<const float>(p.slot, p.k_off);
  const float* vc = slot_region<const float>(p.slot, p.v_off);

  float q[kQB][kDPL];
  int64_t last[kQB];  // last visible key of each query (-1: no query)
#pragma unroll
  for (int qq = 0; qq < kQB; ++qq) {
    last[qq] = -1;
#pragma unroll
    for (int i = 0; i < kDPL; ++i) q[qq][i] = 0.0f;
    if (qq < nq) {
      const int t = (qi0 + qq) / p.group, h = kh * p.group + (qi0 + qq) % p.group;
      last[qq] = pos0 + t;
      const float* qr = p.q + (static_cast<int64_t>(t) * p.Hq + h) * p.hd;
#pragma unroll
      for (int i = 0; i < kDPL; ++i) {
        const int d = lane + 32 * i;
        if (d < p.hd) q[qq][i] = qr[d];
      }
    }
  }

  // This split's share of the keys the block's queries can see.
  const int64_t n_keys = pos0 + (qi0 + nq - 1) / p.group + 1;
  const int64_t chunk = (n_keys + p.splits - 1) / p.splits;
  const int64_t j0 = split * chunk, j1 = min(n_keys, j0 + chunk);

  float m[kQB], l[kQB], acc[kQB][kDPL];
#pragma unroll
  for (int qq = 0; qq < kQB; ++qq) {
    m[qq] = -INFINITY;
    l[qq] = 0.0f;
#pragma unroll
    for (int i = 0; i < kDPL; ++i) acc[qq][i] = 0.0f;
  }
  for (int64_t j = j0 + warp; j < j1; j += kWarps) {
    const float* kr = kc + j * kv_stride + static_cast<int64_t>(kh) * p.hd;
    const float* vr = vc + j * kv_stride + static_cast<int64_t>(kh) * p.hd;
    float kv[kDPL], vv[kDPL];
#pragma unroll
    for (int i = 0; i < kDPL; ++i) {
      const int d = lane + 32 * i;
      kv[i] = d < p.hd ? kr[d] : 0.0f;
      vv[i] = d < p.hd ? vr[d] : 0.0f;
    }
#pragma unroll
    for (int qq = 0; qq < kQB; ++qq) {
      if (j > last[qq]) continue;  // the same for the whole warp
      float dot = 0.0f;
#pragma unroll
      for (int i = 0; i < kDPL; ++i) dot += q[qq][i] * kv[i];
      const float s = warp_sum(dot) * p.scale;
      if (s > m[qq]) {  // a new maximum: rescale what was summed so far
        const float c = expf(m[qq] - s);
        l[qq] *= c;
#pragma unroll
        for (int i = 0; i < kDPL; ++i) acc[qq][i] *= c;
        m[qq] = s;
      }
      const float e = expf(s - m[qq]);
      l[qq] += e;
#pragma unroll
      for (int i = 0; i < kDPL; ++i) acc[qq][i] += e * vv[i];
    }
  }

#pragma unroll
  for (int qq = 0; qq < kQB; ++qq) {
#pragma unroll
    for (int i = 0; i < kDPL; ++i) s_acc[warp][qq][lane + 32 * i] = acc[qq][i];
    if (lane == 0) {
      s_m[warp][qq] = m[qq];
      s_l[warp][qq] = l[qq];
    }
  }
  __syncthreads();

  const int64_t TQ = static_cast<int64_t>(p.T) * p.Hq;
  for (int e = threadIdx.x; e < nq * p.hd; e += blockDim.x) {
    const int qq = e / p.hd, d = e % p.hd;
    float M = -INFINITY;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) M = fmaxf(M, s_m[w][qq]);
    float L = 0.0f, A = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) {
      if (s_m[w][qq] == -INFINITY) continue;  // that warp saw no key of this query
      const float c = expf(s_m[w][qq] - M);
      L += c * s_l[w][qq];
      A += c * s_acc[w][qq][d];
    }
    const int t = (qi0 + qq) / p.group, h = kh * p.group + (qi0 + qq) % p.group;
    const int64_t gq = static_cast<int64_t>(t) * p.Hq + h;
    if (p.splits == 1) {
      p.out[gq * p.hd + d] = A * (1.0f / L);
    } else {
      p.part[(split * TQ + gq) * p.hd + d] = A;
      if (d == 0) {
        float* pm = p.part + p.splits * TQ * p.hd;
        pm[split * TQ + gq] = M;
        pm[p.splits * TQ + split * TQ + gq] = L;
      }
    }
  }
}

// One block per (query, head): out = sum_s e^(m_s - M) acc_s / sum_s e^(m_s - M) l_s.
__global__ void attention_combine_kernel(Params p) {
  __shared__ float wgt[kMaxSplits];
  const int64_t TQ = static_cast<int64_t>(p.T) * p.Hq, gq = blockIdx.x;
  const float* pm = p.part + p.splits * TQ * p.hd;
  const float* pl = pm + p.splits * TQ;
  float M = -INFINITY;
  for (int s = 0; s < p.splits; ++s) M = fmaxf(M, pm[s * TQ + gq]);
  for (int s = threadIdx.x; s < p.splits; s += blockDim.x) {
    const float ms = pm[s * TQ + gq];
    wgt[s] = ms == -INFINITY ? 0.0f : expf(ms - M);
  }
  __syncthreads();
  float L = 0.0f;
  for (int s = 0; s < p.splits; ++s) L += wgt[s] * pl[s * TQ + gq];
  const float inv = 1.0f / L;
  for (int d = threadIdx.x; d < p.hd; d += blockDim.x) {
    float A = 0.0f;
    for (int s = 0; s < p.splits; ++s)
      if (wgt[s] != 0.0f) A += wgt[s] * p.part[(s * TQ + gq) * p.hd + d];
    p.out[gq * p.hd + d] = A * inv;
  }
}

template <int kDPL, int kQB>
void launch(cudaStream_t s, const Params& p) {
  const int qblocks = (p.T * p.group + kQB - 1) / kQB;
  attention_kernel<kDPL, kQB><<<dim3(qblocks, p.Hkv, p.splits), kWarps * 32, 0, s>>>(p);
  FLASHRT_CUDA_LAUNCH_CHECK();
}

}  // namespace

int attention_splits(int sm_count, const AttentionArgs& a, int T) {
  const int group = a.n_heads / a.n_kv_heads, qb = queries_per_block(a.head_dim);
  const int64_t blocks =
      static_cast<int64_t>(a.n_kv_heads) * ((static_cast<int64_t>(T) * group + qb - 1) / qb);
  const int64_t target = 2 * static_cast<int64_t>(sm_count);  // two blocks per multiprocessor
  if (blocks >= target) return 1;
  return static_cast<int>(std::min<int64_t>(kMaxSplits, (target + blocks - 1) / blocks));
}

size_t attention_partial_floats(const AttentionArgs& a, int T, int splits) {
  if (splits <= 1) return 0;
  return static_cast<size_t>(splits) * static_cast<size_t>(T) * static_cast<size_t>(a.n_heads) *
         (static_cast<size_t>(a.head_dim) + 2);
}

void attention(cudaStream_t s, const AttentionArgs& a, int T, SlotRef slot, const int64_t* pos,
               int splits, float* partial) {
  if (a.head_dim < 1 || a.head_dim > kMaxHeadDim)
    throw_error("attention: head size " + std::to_string(a.head_dim) + " (1.." +
                std::to_string(kMaxHeadDim) + ")");
  if (a.n_kv_heads < 1 || a.n_heads % a.n_kv_heads != 0)
    throw_error("attention: " + std::to_string(a.n_heads) + " query heads over " +
                std::to_string(a.n_kv_heads) + " KV heads");
  if (splits < 1 || splits > kMaxSplits) throw_error("attention: bad split count");
  if (a.kv_dtype != DType::F32)
    throw_error("attention: the CUDA backend keeps its KV cache in f32 (use --kv-type f32)");
  const Params p{a.out,  a.q,    slot,      a.k_cache,    a.v_cache,  partial,
                 pos,    T,      a.n_heads, a.n_kv_heads, a.head_dim, a.n_heads / a.n_kv_heads,
                 splits, a.scale};
  if (a.head_dim <= 32)
    launch<1, 8>(s, p);
  else if (a.head_dim <= 64)
    launch<2, 8>(s, p);
  else if (a.head_dim <= 128)
    launch<4, 8>(s, p);
  else
    launch<8, 4>(s, p);
  if (splits > 1) {
    const int64_t TQ = static_cast<int64_t>(T) * a.n_heads;
    attention_combine_kernel<<<static_cast<unsigned>(TQ), 128, 0, s>>>(p);
    FLASHRT_CUDA_LAUNCH_CHECK();
  }
}

}  // namespace flashrt::cuda

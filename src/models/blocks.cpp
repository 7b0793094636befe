#include "models/blocks.h"

#include <fmt/format.h>

#include <cmath>

#include "core/error.h"

namespace flashrt {

// ---- weight tables ----

const WeightTable<MlpWeights> kSwigluMlpWeights = {
    matrix(&MlpWeights::gate, "ffn_gate", "mlp.gate_proj.weight", Dim::kFfn, Dim::kHidden),
    matrix(&MlpWeights::up, "ffn_up", "mlp.up_proj.weight", Dim::kFfn, Dim::kHidden),
    matrix(&MlpWeights::down, "ffn_down", "mlp.down_proj.weight", Dim::kHidden, Dim::kFfn),
};

// ---- state regions ----

std::string kv_region(int layer, char kv) {
  return fmt::format("attn.{}.{}", layer, kv);
}
std::string gdn_conv_region(int layer) {
  return fmt::format("gdn.{}.conv", layer);
}
std::string gdn_state_region(int layer) {
  return fmt::format("gdn.{}.state", layer);
}

void add_kv_cache_regions(StateLayout& l, int layer, int64_t max_ctx, const ModelConfig& c,
                          DType kv_dtype) {
  FLASHRT_CHECK(kv_dtype == DType::F32 || kv_dtype == DType::F16,
                "KV cache type must be f32 or f16 (got {})", dtype_name(kv_dtype));
  for (char kv : {'k', 'v'})
    l.add({kv_region(layer, kv),
           kv_dtype,
           {max_ctx, c.n_kv_heads, c.head_dim},
           RegionKind::kPositional});
}

void add_gdn_state_regions(StateLayout& l, int layer, const ModelConfig& c) {
  l.add({gdn_conv_region(layer),
         DType::F32,
         {c.conv_kernel - 1, c.gdn_conv_dim()},
         RegionKind::kFixed});
  l.add({gdn_state_region(layer),
         DType::F32,
         {c.gdn_v_heads, c.gdn_k_dim, c.gdn_v_dim},
         RegionKind::kFixed});
}

// ---- blocks ----

float* embed(ForwardStep& s, const Mat& table) {
  float* x = s.ws.take(s.T() * table.cols);
  s.be.embed(x, table, s.rows.ids, s.T());
  return x;
}

float* final_norm(ForwardStep& s, const float* x, const Mat& w, float eps) {
  const int64_t H = w.cols;
  float* h = s.ws.take(s.T() * H);
  s.be.rmsnorm(h, H, x, H, w.f32(), s.T(), static_cast<int>(H), eps);
  return h;
}

namespace {

// The attention of q [T, Hq, hd] (read with `q_stride` floats per head, normalized into its own
// buffer) and k, v [T, Hkv, hd]: q/k RMSNorm, RoPE, each sequence's K/V rows stored in its caches,
// then causal attention over them. Returns [T, Hq, hd].
float* attend(ForwardStep& s, Bump& ws, int layer, const float* q_src, int64_t q_stride, float* k,
              const float* v, const AttentionWeights& w, const AttentionShape& a, float eps) {
  const int T = s.T(), hd = a.head_dim;
  float* q = ws.take(static_cast<int64_t>(T) * a.heads * hd);
  s.be.rmsnorm(q, hd, q_src, q_stride, w.q_norm.f32(), T * a.heads, hd, eps);
  s.be.rmsnorm(k, hd, k, hd, w.k_norm.f32(), T * a.kv_heads, hd, eps);
  s.be.rope(q, s.rows, a.heads, hd, a.rope_dim, a.rope_theta);
  s.be.rope(k, s.rows, a.kv_heads, hd, a.rope_dim, a.rope_theta);

  const std::string kname = kv_region(layer, 'k');
  const size_t kc = s.region(kname), vc = s.region(kv_region(layer, 'v'));
  const DType kv_dtype = s.region_dtype(kname);
  const int64_t kv_row = static_cast<int64_t>(a.kv_heads) * hd;
  s.be.store_rows(s.rows, kc, kv_dtype, k, kv_row);
  s.be.store_rows(s.rows, vc, kv_dtype, v, kv_row);

  float* att = ws.take(static_cast<int64_t>(T) * a.heads * hd);
  s.be.attention(s.rows, {att, q, kc, vc, kv_dtype, a.heads, a.kv_heads, hd,
                          1.0f / std::sqrt(static_cast<float>(hd))});
  return att;
}

}  // namespace

void attention(ForwardStep& s, float* x, int layer, const Mat& norm, const AttentionWeights& w,
               const AttentionShape& a, float eps) {
  const int T = s.T(), hd = a.head_dim;
  const int64_t H = norm.cols;
  Bump ws = s.ws;
  float* h = ws.take(T * H);
  s.be.rmsnorm(h, H, x, H, norm.f32(), T, static_cast<int>(H), eps);
  float* q = ws.take(static_cast<int64_t>(T) * a.heads * hd);
  float* k = ws.take(static_cast<int64_t>(T) * a.kv_heads * hd);
  float* v = ws.take(static_cast<int64_t>(T) * a.kv_heads * hd);
  s.be.matmul(q, h, w.wq, T);
  s.be.matmul(k, h, w.wk, T);
  s.be.matmul(v, h, w.wv, T);
  float* att = attend(s, ws, layer, q, hd, k, v, w, a, eps);
  float* o = ws.take(T * H);
  s.be.matmul(o, att, w.wo, T);
  s.be.add(x, o, T * H);
}

void gated_attention(ForwardStep& s, float* x, int layer, const Mat& norm,
                     const AttentionWeights& w, const AttentionShape& a, float eps) {
  const int T = s.T(), hd = a.head_dim;
  const int64_t H = norm.cols;
  Bump ws = s.ws;
  float* h = ws.take(T * H);
  s.be.rmsnorm(h, H, x, H, norm.f32(), T, static_cast<int>(H), eps);
  float* qg = ws.take(static_cast<int64_t>(T) * a.heads * 2 * hd);  // per head [q | gate]
  float* k = ws.take(static_cast<int64_t>(T) * a.kv_heads * hd);
  float* v = ws.take(static_cast<int64_t>(T) * a.kv_heads * hd);
  s.be.matmul(qg, h, w.wq, T);
  s.be.matmul(k, h, w.wk, T);
  s.be.matmul(v, h, w.wv, T);
  float* att = attend(s, ws, layer, qg, 2 * hd, k, v, w, a, eps);
  s.be.sigmoid_gate(att, qg + hd, T * a.heads, hd, 2 * hd);
  float* o = ws.take(T * H);
  s.be.matmul(o, att, w.wo, T);
  s.be.add(x, o, T * H);
}

void gated_delta_net(ForwardStep& s, float* x, int layer, const Mat& norm, const GdnWeights& w,
                     const GdnShape& g, float eps) {
  const int T = s.T(), Hv = g.v_heads, dv = g.v_dim;
  const int64_t H = norm.cols, C = 2LL * g.k_heads * g.k_dim + 1LL * Hv * dv;
  Bump ws = s.ws;
  float* h = ws.take(T * H);
  s.be.rmsnorm(h, H, x, H, norm.f32(), T, static_cast<int>(H), eps);
  float* qkv_in = ws.take(T * C);
  float* z = ws.take(static_cast<int64_t>(T) * Hv * dv);
  float* beta = ws.take(static_cast<int64_t>(T) * Hv);
  float* alpha = ws.take(static_cast<int64_t>(T) * Hv);
  s.be.matmul(qkv_in, h, w.wqkv, T);
  s.be.matmul(z, h, w.wz, T);
  s.be.matmul(beta, h, w.wb, T);
  s.be.matmul(alpha, h, w.wa, T);

  float* qkv = ws.take(T * C);
  s.be.conv1d_silu(s.rows, qkv, qkv_in, s.region(gdn_conv_region(layer)), w.conv.f32(),
                   static_cast<int>(C), g.conv_kernel);

  for (size_t i = 0; i < s.traces.size(); ++i) {  // rows [first, first + count) -> [0, count)
    const GdnTrace* t = s.traces[i];
    if (!t) continue;
    const SeqRows& q = s.rows.seqs[i];
    FLASHRT_CHECK(q.count <= t->rows && t->conv_dim == C && t->v_heads == Hv,
                  "internal: a GDN trace of {} rows for {} rows of a step", t->rows, q.count);
    const size_t fb = sizeof(float), n = static_cast<size_t>(q.count);
    const int64_t r0 = q.first;
    s.be.copy(t->qkv_in(layer), qkv_in + r0 * C, n * static_cast<size_t>(C) * fb);
    s.be.copy(t->qkv(layer), qkv + r0 * C, n * static_cast<size_t>(C) * fb);
    s.be.copy(t->alpha(layer), alpha + r0 * Hv, n * static_cast<size_t>(Hv) * fb);
    s.be.copy(t->beta(layer), beta + r0 * Hv, n * static_cast<size_t>(Hv) * fb);
  }
  float* core = ws.take(static_cast<int64_t>(T) * Hv * dv);
  s.be.gated_delta_net(s.rows, {qkv, C, alpha, beta, w.a_neg.f32(), w.dt_bias.f32(),
                                s.region(gdn_state_region(layer)), core, g.k_heads, Hv, g.k_dim, dv,
                                g.tiled_heads, s.gdn_mode});
  float* normed = ws.take(static_cast<int64_t>(T) * Hv * dv);
  s.be.gated_rmsnorm(normed, core, z, w.norm.f32(), T * Hv, dv, eps);

  float* o = ws.take(T * H);
  s.be.matmul(o, normed, w.wout, T);
  s.be.add(x, o, T * H);
}

void gated_delta_net_replay(ForwardStep& s, int layer, const GdnWeights& w, const GdnShape& g,
                            const GdnTrace& t) {
  const int T = s.T(), Hv = g.v_heads, dv = g.v_dim;
  const int64_t C = 2LL * g.k_heads * g.k_dim + 1LL * Hv * dv;
  FLASHRT_CHECK(T <= t.rows, "internal: replaying {} rows of a {}-row trace", T, t.rows);
  Bump ws = s.ws;
  float* discard = ws.take(T * C);  // the outputs were the step's; only the state is wanted
  s.be.conv1d_silu(s.rows, discard, t.qkv_in(layer), s.region(gdn_conv_region(layer)), w.conv.f32(),
                   static_cast<int>(C), g.conv_kernel);
  float* core = ws.take(static_cast<int64_t>(T) * Hv * dv);
  s.be.gated_delta_net(s.rows, {t.qkv(layer), C, t.alpha(layer), t.beta(layer), w.a_neg.f32(),
                                w.dt_bias.f32(), s.region(gdn_state_region(layer)), core, g.k_heads,
                                Hv, g.k_dim, dv, g.tiled_heads, GdnMode::kRecurrent});
}

void swiglu_mlp(ForwardStep& s, float* x, const Mat& norm, const MlpWeights& w, int64_t ffn,
                float eps) {
  const int T = s.T();
  const int64_t H = norm.cols, F = ffn;
  Bump ws = s.ws;
  float* h = ws.take(T * H);
  s.be.rmsnorm(h, H, x, H, norm.f32(), T, static_cast<int>(H), eps);
  float* gate = ws.take(T * F);
  float* up = ws.take(T * F);
  s.be.matmul(gate, h, w.gate, T);
  s.be.matmul(up, h, w.up, T);
  s.be.swiglu(gate, gate, up, T * F);
  float* o = ws.take(T * H);
  s.be.matmul(o, gate, w.down, T);
  s.be.add(x, o, T * H);
}

}  // namespace flashrt

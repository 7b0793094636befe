#include "models/blocks.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "formats/quant.h"

namespace flashrt {

// ---- weight tables ----

const WeightTable<MlpWeights> kSwigluMlpWeights = {
    matrix(&MlpWeights::gate, "ffn_gate", "mlp.gate_proj.weight", Dim::kFfn, Dim::kHidden),
    matrix(&MlpWeights::up, "ffn_up", "mlp.up_proj.weight", Dim::kFfn, Dim::kHidden),
    matrix(&MlpWeights::down, "ffn_down", "mlp.down_proj.weight", Dim::kHidden, Dim::kFfn),
};

// ---- state ----

std::string kv_region(int layer, char kv) {
  return fmt::format("attn.{}.{}", layer, kv);
}
std::string gdn_conv_region(int layer) {
  return fmt::format("gdn.{}.conv", layer);
}
std::string gdn_state_region(int layer) {
  return fmt::format("gdn.{}.state", layer);
}

void add_decoder_regions(const Model& m, StateLayout& l, int64_t max_ctx, DType kv_dtype) {
  FLASHRT_CHECK(kv_dtype == DType::F32 || kv_dtype == DType::F16,
                "KV cache type must be f32 or f16 (got {})", dtype_name(kv_dtype));
  const auto& c = m.cfg;
  for (int i = 0; i < c.n_layers; ++i) {
    if (c.layers[i] == LayerKind::kAttention) {
      for (char kv : {'k', 'v'})
        l.add({kv_region(i, kv),
               kv_dtype,
               {max_ctx, c.n_kv_heads, c.head_dim},
               RegionKind::kPositional});
    } else {
      l.add({gdn_conv_region(i),
             DType::F32,
             {c.conv_kernel - 1, c.gdn_conv_dim()},
             RegionKind::kFixed});
      l.add({gdn_state_region(i),
             DType::F32,
             {c.gdn_v_heads, c.gdn_k_dim, c.gdn_v_dim},
             RegionKind::kFixed});
    }
  }
}

// ---- forward ----

size_t attention_scratch(const ModelConfig& c, int T) {
  const int64_t q = static_cast<int64_t>(c.n_heads) * c.head_dim,
                kv = static_cast<int64_t>(c.n_kv_heads) * c.head_dim;
  return static_cast<size_t>(T) *
             static_cast<size_t>(c.hidden * 2 + q * (c.attn_output_gate ? 2 : 1) + q * 2 + kv * 2) +
         1024;
}

size_t gdn_scratch(const ModelConfig& c, int T) {
  const int64_t vd = static_cast<int64_t>(c.gdn_v_heads) * c.gdn_v_dim;
  return static_cast<size_t>(T) *
             static_cast<size_t>(c.hidden * 2 + c.gdn_conv_dim() * 2 + vd * 3 + c.gdn_v_heads * 2) +
         1024;
}

size_t mlp_scratch(const ModelConfig& c, int T) {
  return static_cast<size_t>(T) * static_cast<size_t>(c.hidden * 2 + c.ffn * 2) + 1024;
}

size_t decoder_scratch(const Model& m, int T) {
  const auto& c = m.cfg;
  size_t block = std::max(attention_scratch(c, T), mlp_scratch(c, T));
  if (c.n_layers_of(LayerKind::kGatedDeltaNet) > 0) block = std::max(block, gdn_scratch(c, T));
  return static_cast<size_t>(T) * static_cast<size_t>(c.hidden) + block + 1024;
}

void attention_block(Backend& be, const Model& m, int layer, Arena& slot, float* x, int T,
                     Bump ws) {
  const auto& c = m.cfg;
  const auto& l = m.w.layers[static_cast<size_t>(layer)];
  const int hd = c.head_dim, Hq = c.n_heads, Hkv = c.n_kv_heads;
  const int64_t H = c.hidden;
  const int q_width = c.attn_output_gate ? 2 * hd : hd;  // per head: [q | gate] when gated
  const int64_t* pos = slot.region_as<int64_t>(regions::kPos);

  float* h = ws.take(T * H);
  be.rmsnorm(h, H, x, H, l.attn_norm.f32(), T, static_cast<int>(H), c.rms_eps);
  float* qg = ws.take(static_cast<int64_t>(T) * Hq * q_width);
  float* k = ws.take(static_cast<int64_t>(T) * Hkv * hd);
  float* v = ws.take(static_cast<int64_t>(T) * Hkv * hd);
  be.matmul(qg, h, l.attn.wq, T);
  be.matmul(k, h, l.attn.wk, T);
  be.matmul(v, h, l.attn.wv, T);

  float* q = ws.take(static_cast<int64_t>(T) * Hq * hd);
  be.rmsnorm(q, hd, qg, q_width, l.attn.q_norm.f32(), T * Hq, hd, c.rms_eps);
  be.rmsnorm(k, hd, k, hd, l.attn.k_norm.f32(), T * Hkv, hd, c.rms_eps);
  be.rope(q, T, Hq, hd, c.rope_dim, c.rope_theta, pos);
  be.rope(k, T, Hkv, hd, c.rope_dim, c.rope_theta, pos);

  const int ki = slot.layout().find(kv_region(layer, 'k'));
  const int vi = slot.layout().find(kv_region(layer, 'v'));
  const DType kv_dtype = slot.layout().regions()[static_cast<size_t>(ki)].dtype;
  void* kc = slot.region(ki);
  void* vc = slot.region(vi);
  be.store_rows(kc, kv_dtype, k, T, static_cast<int64_t>(Hkv) * hd, pos);
  be.store_rows(vc, kv_dtype, v, T, static_cast<int64_t>(Hkv) * hd, pos);

  float* att = ws.take(static_cast<int64_t>(T) * Hq * hd);
  be.attention(
      {att, q, kc, vc, kv_dtype, T, Hq, Hkv, hd, 1.0f / std::sqrt(static_cast<float>(hd)), pos});
  if (c.attn_output_gate) be.sigmoid_gate(att, qg + hd, T * Hq, hd, q_width);

  float* o = ws.take(T * H);
  be.matmul(o, att, l.attn.wo, T);
  be.add(x, o, T * H);
}

void gdn_block(Backend& be, const Model& m, int layer, Arena& slot, float* x, int T, Bump ws,
               GdnMode mode) {
  const auto& c = m.cfg;
  const auto& g = m.w.layers[static_cast<size_t>(layer)].gdn;
  const int64_t H = c.hidden, C = c.gdn_conv_dim();
  const int Hv = c.gdn_v_heads, dv = c.gdn_v_dim;
  const int64_t* pos = slot.region_as<int64_t>(regions::kPos);

  float* h = ws.take(T * H);
  be.rmsnorm(h, H, x, H, m.w.layers[static_cast<size_t>(layer)].attn_norm.f32(), T,
             static_cast<int>(H), c.rms_eps);
  float* qkv_in = ws.take(T * C);
  float* z = ws.take(static_cast<int64_t>(T) * Hv * dv);
  float* beta = ws.take(static_cast<int64_t>(T) * Hv);
  float* alpha = ws.take(static_cast<int64_t>(T) * Hv);
  be.matmul(qkv_in, h, g.wqkv, T);
  be.matmul(z, h, g.wz, T);
  be.matmul(beta, h, g.wb, T);
  be.matmul(alpha, h, g.wa, T);

  float* qkv = ws.take(T * C);
  be.conv1d_silu(qkv, qkv_in, slot.region_as<float>(gdn_conv_region(layer)), g.conv.f32(), T,
                 static_cast<int>(C), c.conv_kernel);

  float* core = ws.take(static_cast<int64_t>(T) * Hv * dv);
  be.gated_delta_net({qkv, C, alpha, beta, g.a_neg.f32(), g.dt_bias.f32(),
                      slot.region_as<float>(gdn_state_region(layer)), core, T, c.gdn_k_heads, Hv,
                      c.gdn_k_dim, dv, c.gdn_tiled_heads, pos, mode});
  float* normed = ws.take(static_cast<int64_t>(T) * Hv * dv);
  be.gated_rmsnorm(normed, core, z, g.norm.f32(), T * Hv, dv, c.rms_eps);

  float* o = ws.take(T * H);
  be.matmul(o, normed, g.wout, T);
  be.add(x, o, T * H);
}

void mlp_block(Backend& be, const Model& m, int layer, float* x, int T, Bump ws) {
  const auto& c = m.cfg;
  const auto& l = m.w.layers[static_cast<size_t>(layer)];
  const int64_t H = c.hidden, F = c.ffn;
  float* h = ws.take(T * H);
  be.rmsnorm(h, H, x, H, l.ffn_norm.f32(), T, static_cast<int>(H), c.rms_eps);
  float* gate = ws.take(T * F);
  float* up = ws.take(T * F);
  be.matmul(gate, h, l.mlp.gate, T);
  be.matmul(up, h, l.mlp.up, T);
  be.swiglu(gate, gate, up, T * F);
  float* o = ws.take(T * H);
  be.matmul(o, gate, l.mlp.down, T);
  be.add(x, o, T * H);
}

void output_logits(Backend& be, const Model& m, Arena& slot, float* x, int T, float* all_logits,
                   Bump ws) {
  const auto& c = m.cfg;
  const int64_t H = c.hidden, V = c.vocab;
  float* logits = slot.region_as<float>(regions::kLogits);
  if (all_logits) {
    float* h = ws.take(T * H);
    be.rmsnorm(h, H, x, H, m.w.out_norm.f32(), T, static_cast<int>(H), c.rms_eps);
    be.matmul(all_logits, h, m.w.lm_head, T);
    be.copy(logits, all_logits + (T - 1) * V, static_cast<size_t>(V) * sizeof(float));
  } else {
    float* h = ws.take(H);
    be.rmsnorm(h, H, x + (T - 1) * H, H, m.w.out_norm.f32(), 1, static_cast<int>(H), c.rms_eps);
    be.matmul(logits, h, m.w.lm_head, 1);
  }
}

void decoder_forward(const Model& m, Backend& be, const ForwardArgs& a) {
  const auto& c = m.cfg;
  Arena& slot = *a.slot;
  const int T = a.T;
  int64_t* pos = slot.region_as<int64_t>(regions::kPos);
  float* base = be.scratch(decoder_scratch(m, T));
  float* x = base;
  Bump ws(base + (static_cast<int64_t>(T) * c.hidden + 15) / 16 * 16);

  be.store_tokens(slot.region_as<int32_t>(regions::kTokens), a.ids, T, pos);
  be.embed(x, m.w.embed, a.ids, T);
  for (int i = 0; i < c.n_layers; ++i) {
    if (c.layers[static_cast<size_t>(i)] == LayerKind::kAttention)
      attention_block(be, m, i, slot, x, T, ws);
    else
      gdn_block(be, m, i, slot, x, T, ws, a.gdn_mode);
    mlp_block(be, m, i, x, T, ws);
  }
  output_logits(be, m, slot, x, T, a.all_logits, ws);
  be.advance_pos(pos, T);
}

}  // namespace flashrt

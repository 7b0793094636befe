// The pieces architectures are built from: the weight tables of shared blocks, their state
// regions, and the transformer blocks (attention, gated attention, Gated DeltaNet, SwiGLU MLP,
// embedding, final norm) written in Backend ops over the rows of a step. Each block reads the
// residual stream x [T, hidden] and adds its output to it; what differs between architectures is
// which blocks an architecture's forward() calls, with which sizes, not flags inside them.
#pragma once
#include <cstdint>
#include <string>

#include "models/forward_step.h"
#include "models/model.h"

namespace flashrt {

// ---- weight tables of shared blocks ----

// The SwiGLU MLP of every Llama-family decoder: down(silu(gate(x)) * up(x)).
extern const WeightTable<MlpWeights> kSwigluMlpWeights;

// ---- state regions ----

std::string kv_region(int layer, char kv);  // "attn.{layer}.k" / ".v"
std::string gdn_conv_region(int layer);     // "gdn.{layer}.conv"
std::string gdn_state_region(int layer);    // "gdn.{layer}.state"
// An attention layer's key and value caches: [max_ctx, n_kv_heads, head_dim] of kv_dtype (F32 or
// F16), positional.
void add_kv_cache_regions(StateLayout& l, int layer, int64_t max_ctx, const ModelConfig& c,
                          DType kv_dtype);
// A Gated DeltaNet layer's conv state [K-1, conv_dim] and recurrent state [Hv, dk, dv], both f32
// and fixed-size.
void add_gdn_state_regions(StateLayout& l, int layer, const ModelConfig& c);

// ---- blocks ----

struct AttentionShape {
  int heads, kv_heads, head_dim;
  int rope_dim;  // rotated dimensions of each head (head_dim for full RoPE)
  double rope_theta;
};

// Embeds the step's tokens: the residual stream x [T, hidden], taken from s.ws.
float* embed(ForwardStep& s, const Mat& table);
// The final RMSNorm of every row: [T, hidden], taken from s.ws.
float* final_norm(ForwardStep& s, const float* x, const Mat& w, float eps);

// x += o_proj(attention(q, k, v)) of h = rmsnorm(x) * norm: GQA softmax attention with per-head
// q/k RMSNorm (the same eps) and RoPE (Qwen3), each sequence appending its K/V rows to layer
// `layer`'s caches.
void attention(ForwardStep& s, float* x, int layer, const Mat& norm, const AttentionWeights& w,
               const AttentionShape& a, float eps);
// Qwen3.5's gated attention: q_proj yields per head [q | gate] and the attention output of each
// head is multiplied by sigmoid(gate) before o_proj.
void gated_attention(ForwardStep& s, float* x, int layer, const Mat& norm,
                     const AttentionWeights& w, const AttentionShape& a, float eps);

struct GdnShape {
  int k_heads, v_heads, k_dim, v_dim, conv_kernel;
  bool tiled_heads;  // value head h uses key head h % Hk (llama.cpp) instead of h / (Hv / Hk)
};
// x += out_proj(gated_rmsnorm(GatedDeltaNet(conv(qkv)), z)) of h = rmsnorm(x) * norm, each sequence
// advancing layer `layer`'s conv and recurrent state in its slot.
void gated_delta_net(ForwardStep& s, float* x, int layer, const Mat& norm, const GdnWeights& w,
                     const GdnShape& g, float eps);

// The conv and recurrent state of layer `layer` advanced again over the first s.T() rows of a
// recorded step (ForwardStep::trace), from the state before that step: the state the step had
// after those rows, bit for bit (the conv keeps inputs; the recurrence runs token by token).
void gated_delta_net_replay(ForwardStep& s, int layer, const GdnWeights& w, const GdnShape& g,
                            const GdnTrace& trace);

// x += down(silu(gate(h)) * up(h)) of h = rmsnorm(x) * norm.
void swiglu_mlp(ForwardStep& s, float* x, const Mat& norm, const MlpWeights& w, int64_t ffn,
                float eps);

}  // namespace flashrt

// Pieces shared by the architecture files: the weight tables of shared blocks, and the transformer
// blocks (attention, gated attention, Gated DeltaNet, SwiGLU MLP, output head) written in Backend
// ops.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "models/model.h"

namespace flashrt {

// ---- weight tables of shared blocks ----

// The SwiGLU MLP of every Llama-family decoder: down(silu(gate(x)) * up(x)).
extern const WeightTable<MlpWeights> kSwigluMlpWeights;

// ---- forward ----

// A bump allocator over the backend's scratch buffer.
class Bump {
 public:
  explicit Bump(float* p) : p_(p) {}
  float* take(int64_t n) {
    float* r = p_;
    p_ += (n + 15) / 16 * 16;  // keep 64-byte alignment
    return r;
  }

 private:
  float* p_;
};

size_t attention_scratch(const ModelConfig& c, int T);
size_t gdn_scratch(const ModelConfig& c, int T);
size_t mlp_scratch(const ModelConfig& c, int T);

// x [T, hidden] += attention(rmsnorm(x)), appending K/V rows to the slot.
void attention_block(Backend& be, const Model& m, int layer, Arena& slot, float* x, int T, Bump ws);
// x += GatedDeltaNet(rmsnorm(x)), advancing the layer's conv and recurrent state.
void gdn_block(Backend& be, const Model& m, int layer, Arena& slot, float* x, int T, Bump ws,
               GdnMode mode);
// x += mlp(rmsnorm(x))
void mlp_block(Backend& be, const Model& m, int layer, float* x, int T, Bump ws);
// Final norm and LM head: the last position's logits into the slot's logits region (and every
// position's into all_logits when given).
void output_logits(Backend& be, const Model& m, Arena& slot, float* x, int T, float* all_logits,
                   Bump ws);

// The common forward of a decoder: embed, the layers in order, logits, advance.
void decoder_forward(const Model& m, Backend& be, const ForwardArgs& a);

std::string kv_region(int layer, char kv);  // "attn.{layer}.k" / ".v"
std::string gdn_conv_region(int layer);     // "gdn.{layer}.conv"
std::string gdn_state_region(int layer);    // "gdn.{layer}.state"
// KV regions for every attention layer, conv + recurrent state for every GDN layer.
// KV regions of kv_dtype (F32 or F16); recurrent and conv state always F32.
void add_decoder_regions(const Model& m, StateLayout& l, int64_t max_ctx, DType kv_dtype);
size_t decoder_scratch(const Model& m, int T);

}  // namespace flashrt

// Qwen3 dense decoder (also plain Llama-style graphs with q/k norm): RMSNorm, GQA attention with
// per-head q/k RMSNorm and RoPE, SwiGLU MLP; tied or untied embeddings.
#include <cmath>

#include "core/error.h"
#include "formats/gguf.h"
#include "formats/hf_config.h"
#include "models/blocks.h"
#include "models/decoder_config.h"

namespace flashrt {

namespace {

// ---- weights ----

const WeightTable<ModelWeights> kGlobalWeights = {
    matrix(&ModelWeights::embed, "token_embd", "{m}embed_tokens.weight", Dim::kVocab, Dim::kHidden),
    norm(&ModelWeights::out_norm, "output_norm", "{m}norm.weight", Dim::kHidden),
    matrix(&ModelWeights::lm_head, "output", "lm_head.weight", Dim::kVocab, Dim::kHidden).tied(),
};

const WeightTable<LayerWeights> kNormWeights = {
    norm(&LayerWeights::attn_norm, "attn_norm", "input_layernorm.weight", Dim::kHidden),
    norm(&LayerWeights::ffn_norm, "ffn_norm", "post_attention_layernorm.weight", Dim::kHidden),
};

const WeightTable<AttentionWeights> kAttentionWeights = {
    matrix(&AttentionWeights::wq, "attn_q", "self_attn.q_proj.weight", Dim::kQ, Dim::kHidden),
    matrix(&AttentionWeights::wk, "attn_k", "self_attn.k_proj.weight", Dim::kKv, Dim::kHidden),
    matrix(&AttentionWeights::wv, "attn_v", "self_attn.v_proj.weight", Dim::kKv, Dim::kHidden),
    matrix(&AttentionWeights::wo, "attn_output", "self_attn.o_proj.weight", Dim::kHidden, Dim::kQ),
    norm(&AttentionWeights::q_norm, "attn_q_norm", "self_attn.q_norm.weight", Dim::kHeadDim),
    norm(&AttentionWeights::k_norm, "attn_k_norm", "self_attn.k_norm.weight", Dim::kHeadDim),
};

class Qwen3 : public Architecture {
 public:
  std::string name() const override { return "qwen3"; }
  std::string gguf_name() const override { return "qwen3"; }
  std::vector<std::string> hf_model_types() const override { return {"qwen3"}; }

  ModelConfig config_from_hf(const nlohmann::json& j, const std::string& path) const override {
    HFConfig h(j, path);
    ModelConfig c = decoder_config_from_hf(h);
    c.arch = name();
    c.layers.assign(static_cast<size_t>(c.n_layers), LayerKind::kAttention);
    c.rope_dim = c.head_dim;
    return c;
  }

  ModelConfig config_from_gguf(const GGUFFile& f) const override {
    ModelConfig c = decoder_config_from_gguf(f, gguf_name());
    c.arch = name();
    c.layers.assign(static_cast<size_t>(c.n_layers), LayerKind::kAttention);
    return c;
  }

  std::vector<std::pair<std::string, ModelConfig>> shapes() const override {
    ModelConfig c;
    c.arch = name();
    c.rope_theta = 1e6;
    c.tied_embeddings = true;
    ModelConfig s06 = c;  // Qwen/Qwen3-0.6B
    s06.vocab = 151936, s06.hidden = 1024, s06.ffn = 3072, s06.n_layers = 28, s06.n_heads = 16;
    s06.n_kv_heads = 8, s06.head_dim = 128, s06.max_positions = 40960, s06.eos_ids = {151645};
    ModelConfig tiny = c;
    tiny.vocab = 512, tiny.hidden = 64, tiny.ffn = 128, tiny.n_layers = 2, tiny.n_heads = 4;
    tiny.n_kv_heads = 2, tiny.head_dim = 16, tiny.max_positions = 4096;
    std::vector<std::pair<std::string, ModelConfig>> out = {{"0.6b", s06}, {"tiny", tiny}};
    for (auto& [n, s] : out) {
      s.rope_dim = s.head_dim;
      s.layers.assign(static_cast<size_t>(s.n_layers), LayerKind::kAttention);
    }
    return out;
  }

  void bind_weights(Model& m, WeightList& out) const override {
    out.add_model(kGlobalWeights, m.w);
    for (int i = 0; i < m.cfg.n_layers; ++i) {
      LayerWeights& l = m.w.layers[static_cast<size_t>(i)];
      out.add_layer(kNormWeights, l, i);
      out.add_layer(kAttentionWeights, l.attn, i);
      out.add_layer(kSwigluMlpWeights, l.mlp, i);
    }
  }

  void add_gguf_metadata(const Model& m, GGUFWriter& w) const override {
    add_decoder_gguf_metadata(m, w, gguf_name());
  }

  // ---- state: the key and value cache of every layer ----

  void add_state_regions(const Model& m, StateLayout& l, int64_t max_ctx,
                         DType kv_dtype) const override {
    for (int i = 0; i < m.cfg.n_layers; ++i) add_kv_cache_regions(l, i, max_ctx, m.cfg, kv_dtype);
  }

  // ---- forward: embed; per layer attention then MLP, each pre-norm and residual; final norm ----

  float* forward(const Model& m, ForwardStep& s) const override {
    const ModelConfig& c = m.cfg;
    const AttentionShape attn{c.n_heads, c.n_kv_heads, c.head_dim, c.rope_dim, c.rope_theta};
    float* x = embed(s, m.w.embed);
    for (int i = 0; i < c.n_layers; ++i) {
      const LayerWeights& l = m.w.layers[static_cast<size_t>(i)];
      attention(s, x, i, l.attn_norm, l.attn, attn, c.rms_eps);
      swiglu_mlp(s, x, l.ffn_norm, l.mlp, c.ffn, c.rms_eps);
    }
    return final_norm(s, x, m.w.out_norm, c.rms_eps);
  }
};

}  // namespace

const Architecture& qwen3_architecture() {
  static const Qwen3 arch;
  return arch;
}

}  // namespace flashrt

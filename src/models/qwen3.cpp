// Qwen3 dense decoder (also plain Llama-style graphs with q/k norm): RMSNorm, GQA attention with
// per-head q/k RMSNorm and RoPE, SwiGLU MLP; tied or untied embeddings.
#include <cmath>

#include "core/error.h"
#include "formats/gguf.h"
#include "formats/hf_config.h"
#include "models/blocks.h"
#include "models/qwen_common.h"

namespace flashrt {

namespace {

class Qwen3 : public Architecture {
 public:
  std::string name() const override { return "qwen3"; }
  std::string gguf_name() const override { return "qwen3"; }
  std::vector<std::string> hf_model_types() const override { return {"qwen3"}; }

  ModelConfig config_from_hf(const nlohmann::json& j, const std::string& path) const override {
    HFConfig h(j, path);
    ModelConfig c = common_hf_config(h);
    c.arch = name();
    c.layers.assign(static_cast<size_t>(c.n_layers), LayerKind::kAttention);
    c.rope_dim = c.head_dim;
    return c;
  }

  ModelConfig config_from_gguf(const GGUFFile& f) const override {
    ModelConfig c = common_gguf_config(f, gguf_name());
    c.arch = name();
    c.layers.assign(static_cast<size_t>(c.n_layers), LayerKind::kAttention);
    return c;
  }

  void load_hf_weights(Model& m, const TensorSource& src) const override {
    load_hf_common(m, src, /*zero_centered=*/false);
    for (int i = 0; i < m.cfg.n_layers; ++i) load_hf_attention(m, src, i, /*zero_centered=*/false);
  }

  void load_gguf_weights(Model& m, const TensorSource& src) const override {
    load_gguf_common(m, src);
    for (int i = 0; i < m.cfg.n_layers; ++i) load_gguf_attention(m, src, i);
  }

  void write_gguf(const Model& m, GGUFWriter& w, DType type) const override {
    write_gguf_common_metadata(m, w, gguf_name());
    write_gguf_common_tensors(m, w, type);
    for (int i = 0; i < m.cfg.n_layers; ++i) write_gguf_attention(m, w, i, type);
  }

  void add_state_regions(const Model& m, StateLayout& l, int64_t max_ctx,
                         DType kv_dtype) const override {
    add_decoder_regions(m, l, max_ctx, kv_dtype);
  }
  size_t scratch_floats(const Model& m, int max_T) const override {
    return decoder_scratch(m, max_T);
  }
  void forward(const Model& m, Backend& be, const ForwardArgs& a) const override {
    decoder_forward(m, be, a);
  }
};

}  // namespace

const Architecture& qwen3_architecture() {
  static const Qwen3 arch;
  return arch;
}

}  // namespace flashrt

// Hyper-parameters of a decoder model, filled from an HF config.json or GGUF metadata.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace flashrt {

enum class LayerKind : uint8_t { kAttention, kGatedDeltaNet };

struct ModelConfig {
  std::string arch;  // flashrt's architecture name: "qwen3", "qwen3_5"
  int64_t vocab = 0, hidden = 0, ffn = 0;
  int n_layers = 0;
  int n_heads = 0, n_kv_heads = 0, head_dim = 0;
  float rms_eps = 1e-6f;
  double rope_theta = 10000.0;
  int rope_dim = 0;  // rotary dimensions (head_dim for full RoPE)
  bool tied_embeddings = false;
  bool attn_output_gate = false;  // qwen3_5: q_proj also yields a per-head sigmoid gate
  int64_t max_positions = 0;      // the model's trained context
  std::vector<LayerKind> layers;  // kind of each layer
  // Gated DeltaNet (qwen3_5)
  int conv_kernel = 0;
  int gdn_k_heads = 0, gdn_v_heads = 0, gdn_k_dim = 0, gdn_v_dim = 0;
  // How value heads map to key heads: grouped (HF: v head h uses k head h / (Hv/Hk)) or tiled
  // (llama.cpp's GGUF reorders v heads so that v head h uses k head h % Hk).
  bool gdn_tiled_heads = false;
  // Multi-token prediction layers after the decoder (Qwen3.5's mtp.*; llama.cpp's nextn blocks,
  // stored after the decoder's as blk.{n_layers}). 0 or 1.
  int mtp_layers = 0;
  // Special tokens from the model files (the tokenizer may add more stop tokens).
  int32_t bos_id = -1;
  std::vector<int32_t> eos_ids;

  int64_t gdn_conv_dim() const {
    return 2LL * gdn_k_heads * gdn_k_dim + 1LL * gdn_v_heads * gdn_v_dim;
  }
  int n_layers_of(LayerKind k) const {
    int n = 0;
    for (auto l : layers) n += l == k;
    return n;
  }
  // A canonical text of every field, for fingerprints and `flashrt info`.
  std::string describe() const;
  // Checks sizes are positive and consistent; throws an Error naming `where`.
  void validate(const std::string& where) const;
};

}  // namespace flashrt

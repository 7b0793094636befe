// What the Qwen family (qwen3, qwen3_5) shares: config fields, the names of embeddings, norms,
// attention and MLP weights in HF and GGUF files, and GGUF export of those.
#pragma once
#include <string>

#include "formats/gguf.h"
#include "formats/hf_config.h"
#include "models/model.h"

namespace flashrt {

ModelConfig common_hf_config(const HFConfig& h);
ModelConfig common_gguf_config(const GGUFFile& f, const std::string& arch);

// Embedding, final norm, LM head, per-layer norms and MLP. Zero-centered norms get their +1 here.
void load_hf_common(Model& m, const TensorSource& src, bool zero_centered);
void load_hf_attention(Model& m, const TensorSource& src, int layer, bool zero_centered);
// GGUF stores norm multipliers as they are applied (llama.cpp folds the +1 in when converting).
void load_gguf_common(Model& m, const TensorSource& src,
                      const std::string& ffn_norm_name = "ffn_norm");
void load_gguf_attention(Model& m, const TensorSource& src, int layer);

void write_gguf_common_metadata(const Model& m, GGUFWriter& w, const std::string& arch);
void write_gguf_common_tensors(const Model& m, GGUFWriter& w, DType type,
                               const std::string& ffn_norm_name = "ffn_norm");
void write_gguf_attention(const Model& m, GGUFWriter& w, int layer, DType type);

}  // namespace flashrt

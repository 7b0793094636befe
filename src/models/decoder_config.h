// Hyper-parameters every decoder of the Llama family states the same way (sizes, heads, norms,
// RoPE, embeddings, special tokens), read from an HF config.json or GGUF metadata and written back
// as llama.cpp's keys. Each architecture adds its own fields on top.
#pragma once
#include <string>

#include "formats/gguf.h"
#include "formats/hf_config.h"
#include "models/model.h"

namespace flashrt {

ModelConfig decoder_config_from_hf(const HFConfig& h);
// `arch` is llama.cpp's architecture name, the prefix of its keys ("qwen3" -> "qwen3.block_count").
ModelConfig decoder_config_from_gguf(const GGUFFile& f, const std::string& arch);
void add_decoder_gguf_metadata(const Model& m, GGUFWriter& w, const std::string& arch);

}  // namespace flashrt

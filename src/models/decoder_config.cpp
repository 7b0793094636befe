#include "models/decoder_config.h"

#include <filesystem>

#include "core/error.h"

namespace flashrt {

ModelConfig decoder_config_from_hf(const HFConfig& h) {
  ModelConfig c;
  c.vocab = h.get_int("vocab_size");
  c.hidden = h.get_int("hidden_size");
  c.ffn = h.get_int("intermediate_size");
  c.n_layers = static_cast<int>(h.get_int("num_hidden_layers"));
  c.n_heads = static_cast<int>(h.get_int("num_attention_heads"));
  c.n_kv_heads = static_cast<int>(h.get_int("num_key_value_heads", c.n_heads));
  FLASHRT_CHECK(c.n_heads > 0, "{}: num_attention_heads must be positive", h.path());
  c.head_dim = static_cast<int>(h.get_int("head_dim", c.hidden / c.n_heads));
  c.rms_eps = static_cast<float>(h.get_float("rms_norm_eps", 1e-6));
  const HFConfig rope = h.child("rope_parameters");
  c.rope_theta = rope.get_float("rope_theta", h.get_float("rope_theta", 10000.0));
  const std::string rope_type = rope.get_string("rope_type", "default");
  if (rope_type != "default")
    fail("{}: RoPE type '{}' is not supported yet (only 'default')", h.path(), rope_type);
  const HFConfig scaling = h.child("rope_scaling");
  const std::string scaling_type =
      scaling.get_string("rope_type", scaling.get_string("type", "default"));
  if (scaling_type != "default")
    fail("{}: rope_scaling '{}' is not supported yet", h.path(), scaling_type);
  if (h.get_bool("attention_bias", false))
    fail("{}: attention_bias=true is not supported", h.path());
  c.tied_embeddings = h.get_bool("tie_word_embeddings", false);
  c.max_positions = h.get_int("max_position_embeddings", 4096);
  c.bos_id = static_cast<int32_t>(h.get_int("bos_token_id", -1));
  for (int64_t e : h.get_int_list("eos_token_id")) {
    FLASHRT_CHECK(e >= 0 && e < c.vocab, "{}: eos_token_id {} is outside the vocabulary (0..{})",
                  h.path(), e, c.vocab - 1);
    c.eos_ids.push_back(static_cast<int32_t>(e));
  }
  return c;
}

ModelConfig decoder_config_from_gguf(const GGUFFile& f, const std::string& arch) {
  const std::string p = arch + ".";
  ModelConfig c;
  c.hidden = f.get_int(p + "embedding_length");
  c.ffn = f.get_int(p + "feed_forward_length");
  c.n_layers = static_cast<int>(f.get_int(p + "block_count"));
  c.n_heads = static_cast<int>(f.get_int(p + "attention.head_count"));
  c.n_kv_heads = static_cast<int>(f.get_int_opt(p + "attention.head_count_kv").value_or(c.n_heads));
  FLASHRT_CHECK(c.n_heads > 0, "{}: attention.head_count must be positive", f.describe());
  c.head_dim =
      static_cast<int>(f.get_int_opt(p + "attention.key_length").value_or(c.hidden / c.n_heads));
  c.rms_eps = static_cast<float>(f.get_float(p + "attention.layer_norm_rms_epsilon"));
  c.rope_theta = f.get_float_opt(p + "rope.freq_base").value_or(10000.0);
  c.rope_dim = static_cast<int>(f.get_int_opt(p + "rope.dimension_count").value_or(c.head_dim));
  c.max_positions = f.get_int_opt(p + "context_length").value_or(4096);
  const TensorInfo& embd = f.get("token_embd.weight");
  FLASHRT_CHECK(embd.shape.size() == 2, "{}: token_embd.weight is not a matrix", f.describe());
  c.vocab = embd.shape[0];
  c.tied_embeddings = f.find("output.weight") == nullptr;
  // Token ids are u32 in GGUF: checked against the vocabulary before they become int32.
  auto token_id = [&](const char* key) -> std::optional<int32_t> {
    const auto v = f.get_int_opt(key);
    if (!v) return std::nullopt;
    FLASHRT_CHECK(*v >= 0 && *v < c.vocab, "{}: {} is {}, outside the vocabulary (0..{})",
                  f.describe(), key, *v, c.vocab - 1);
    return static_cast<int32_t>(*v);
  };
  c.bos_id = token_id("tokenizer.ggml.bos_token_id").value_or(-1);
  if (auto e = token_id("tokenizer.ggml.eos_token_id")) c.eos_ids.push_back(*e);
  if (auto e = token_id("tokenizer.ggml.eot_token_id"))
    if (c.eos_ids.empty() || c.eos_ids[0] != *e) c.eos_ids.push_back(*e);
  return c;
}

void add_decoder_gguf_metadata(const Model& m, GGUFWriter& w, const std::string& arch) {
  const auto& c = m.cfg;
  const std::string p = arch + ".";
  std::string name = std::filesystem::path(m.path).filename().string();
  if (name.ends_with(".gguf")) name.resize(name.size() - 5);
  w.set("general.architecture", GGUFValue::str(arch));
  w.set("general.name", GGUFValue::str(name.empty() ? arch : name));
  w.set("general.quantization_version", GGUFValue::u32(2));
  w.set(p + "context_length", GGUFValue::u32(static_cast<uint32_t>(c.max_positions)));
  w.set(p + "embedding_length", GGUFValue::u32(static_cast<uint32_t>(c.hidden)));
  w.set(p + "block_count", GGUFValue::u32(static_cast<uint32_t>(c.n_layers)));
  w.set(p + "feed_forward_length", GGUFValue::u32(static_cast<uint32_t>(c.ffn)));
  w.set(p + "attention.head_count", GGUFValue::u32(static_cast<uint32_t>(c.n_heads)));
  w.set(p + "attention.head_count_kv", GGUFValue::u32(static_cast<uint32_t>(c.n_kv_heads)));
  w.set(p + "attention.key_length", GGUFValue::u32(static_cast<uint32_t>(c.head_dim)));
  w.set(p + "attention.value_length", GGUFValue::u32(static_cast<uint32_t>(c.head_dim)));
  w.set(p + "attention.layer_norm_rms_epsilon", GGUFValue::f32(c.rms_eps));
  w.set(p + "rope.freq_base", GGUFValue::f32(static_cast<float>(c.rope_theta)));
  w.set(p + "rope.dimension_count", GGUFValue::u32(static_cast<uint32_t>(c.rope_dim)));
}

}  // namespace flashrt

#include "models/qwen_common.h"

#include <filesystem>

#include "core/error.h"
#include "models/blocks.h"

namespace flashrt {

namespace {
std::string hf_layer(const Model& m, int i) {
  return m.hf_prefix + "layers." + std::to_string(i) + ".";
}
std::string blk(int i) {
  return "blk." + std::to_string(i) + ".";
}
float plus_one(float x) {
  return x + 1.0f;
}

// llama.cpp's general.file_type for a model mostly stored as `t`.
uint32_t llama_file_type(DType t) {
  switch (t) {
    case DType::F32:
      return 0;
    case DType::F16:
      return 1;
    case DType::Q4_0:
      return 2;
    case DType::Q8_0:
      return 7;
    case DType::Q4_K:
      return 15;
    case DType::Q6_K:
      return 18;
    case DType::BF16:
      return 32;
    default:
      return 0;
  }
}
}  // namespace

ModelConfig common_hf_config(const HFConfig& h) {
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
  for (int64_t e : h.get_int_list("eos_token_id")) c.eos_ids.push_back(static_cast<int32_t>(e));
  return c;
}

ModelConfig common_gguf_config(const GGUFFile& f, const std::string& arch) {
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
  c.bos_id = static_cast<int32_t>(f.get_int_opt("tokenizer.ggml.bos_token_id").value_or(-1));
  if (auto e = f.get_int_opt("tokenizer.ggml.eos_token_id"))
    c.eos_ids.push_back(static_cast<int32_t>(*e));
  if (auto e = f.get_int_opt("tokenizer.ggml.eot_token_id"))
    if (c.eos_ids.empty() || c.eos_ids[0] != *e) c.eos_ids.push_back(static_cast<int32_t>(*e));
  return c;
}

void load_hf_common(Model& m, const TensorSource& src, bool zc) {
  const auto& c = m.cfg;
  auto norm = [&](const std::string& name, int64_t n) {
    return load_f32(m, src, name, 1, n, zc ? std::function<float(float)>(plus_one) : nullptr);
  };
  m.w.embed = load_matrix(src, m.hf_prefix + "embed_tokens.weight", c.vocab, c.hidden);
  m.w.out_norm = norm(m.hf_prefix + "norm.weight", c.hidden);
  m.w.lm_head =
      c.tied_embeddings ? m.w.embed : load_matrix(src, "lm_head.weight", c.vocab, c.hidden);
  m.w.layers.resize(static_cast<size_t>(c.n_layers));
  for (int i = 0; i < c.n_layers; ++i) {
    auto& l = m.w.layers[static_cast<size_t>(i)];
    const std::string p = hf_layer(m, i);
    l.kind = c.layers[static_cast<size_t>(i)];
    l.attn_norm = norm(p + "input_layernorm.weight", c.hidden);
    l.ffn_norm = norm(p + "post_attention_layernorm.weight", c.hidden);
    l.mlp.gate = load_matrix(src, p + "mlp.gate_proj.weight", c.ffn, c.hidden);
    l.mlp.up = load_matrix(src, p + "mlp.up_proj.weight", c.ffn, c.hidden);
    l.mlp.down = load_matrix(src, p + "mlp.down_proj.weight", c.hidden, c.ffn);
  }
}

void load_hf_attention(Model& m, const TensorSource& src, int i, bool zc) {
  const auto& c = m.cfg;
  auto& a = m.w.layers[static_cast<size_t>(i)].attn;
  const std::string p = hf_layer(m, i) + "self_attn.";
  const int64_t q_rows =
      static_cast<int64_t>(c.n_heads) * c.head_dim * (c.attn_output_gate ? 2 : 1);
  const int64_t kv_rows = static_cast<int64_t>(c.n_kv_heads) * c.head_dim;
  a.wq = load_matrix(src, p + "q_proj.weight", q_rows, c.hidden);
  a.wk = load_matrix(src, p + "k_proj.weight", kv_rows, c.hidden);
  a.wv = load_matrix(src, p + "v_proj.weight", kv_rows, c.hidden);
  a.wo =
      load_matrix(src, p + "o_proj.weight", c.hidden, static_cast<int64_t>(c.n_heads) * c.head_dim);
  const auto f = zc ? std::function<float(float)>(plus_one) : nullptr;
  a.q_norm = load_f32(m, src, p + "q_norm.weight", 1, c.head_dim, f);
  a.k_norm = load_f32(m, src, p + "k_norm.weight", 1, c.head_dim, f);
}

void load_gguf_common(Model& m, const TensorSource& src, const std::string& ffn_norm_name) {
  const auto& c = m.cfg;
  m.w.embed = load_matrix(src, "token_embd.weight", c.vocab, c.hidden);
  m.w.out_norm = load_f32(m, src, "output_norm.weight", 1, c.hidden);
  m.w.lm_head =
      c.tied_embeddings ? m.w.embed : load_matrix(src, "output.weight", c.vocab, c.hidden);
  m.w.layers.resize(static_cast<size_t>(c.n_layers));
  for (int i = 0; i < c.n_layers; ++i) {
    auto& l = m.w.layers[static_cast<size_t>(i)];
    const std::string p = blk(i);
    l.kind = c.layers[static_cast<size_t>(i)];
    l.attn_norm = load_f32(m, src, p + "attn_norm.weight", 1, c.hidden);
    l.ffn_norm = load_f32(m, src, p + ffn_norm_name + ".weight", 1, c.hidden);
    l.mlp.gate = load_matrix(src, p + "ffn_gate.weight", c.ffn, c.hidden);
    l.mlp.up = load_matrix(src, p + "ffn_up.weight", c.ffn, c.hidden);
    l.mlp.down = load_matrix(src, p + "ffn_down.weight", c.hidden, c.ffn);
  }
}

void load_gguf_attention(Model& m, const TensorSource& src, int i) {
  const auto& c = m.cfg;
  auto& a = m.w.layers[static_cast<size_t>(i)].attn;
  const std::string p = blk(i);
  const int64_t q_rows =
      static_cast<int64_t>(c.n_heads) * c.head_dim * (c.attn_output_gate ? 2 : 1);
  const int64_t kv_rows = static_cast<int64_t>(c.n_kv_heads) * c.head_dim;
  a.wq = load_matrix(src, p + "attn_q.weight", q_rows, c.hidden);
  a.wk = load_matrix(src, p + "attn_k.weight", kv_rows, c.hidden);
  a.wv = load_matrix(src, p + "attn_v.weight", kv_rows, c.hidden);
  a.wo = load_matrix(src, p + "attn_output.weight", c.hidden,
                     static_cast<int64_t>(c.n_heads) * c.head_dim);
  a.q_norm = load_f32(m, src, p + "attn_q_norm.weight", 1, c.head_dim);
  a.k_norm = load_f32(m, src, p + "attn_k_norm.weight", 1, c.head_dim);
}

void write_gguf_common_metadata(const Model& m, GGUFWriter& w, const std::string& arch) {
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

void write_gguf_common_tensors(const Model& m, GGUFWriter& w, DType type,
                               const std::string& ffn_norm_name) {
  const auto& c = m.cfg;
  w.set("general.file_type", GGUFValue::u32(llama_file_type(type)));
  gguf_add_matrix(w, "token_embd.weight", m.w.embed, type);
  gguf_add_f32(w, "output_norm.weight", m.w.out_norm, {c.hidden});
  if (!c.tied_embeddings) gguf_add_matrix(w, "output.weight", m.w.lm_head, type);
  for (int i = 0; i < c.n_layers; ++i) {
    const auto& l = m.w.layers[static_cast<size_t>(i)];
    const std::string p = blk(i);
    gguf_add_f32(w, p + "attn_norm.weight", l.attn_norm, {c.hidden});
    gguf_add_f32(w, p + ffn_norm_name + ".weight", l.ffn_norm, {c.hidden});
    gguf_add_matrix(w, p + "ffn_gate.weight", l.mlp.gate, type);
    gguf_add_matrix(w, p + "ffn_up.weight", l.mlp.up, type);
    gguf_add_matrix(w, p + "ffn_down.weight", l.mlp.down, type);
  }
}

void write_gguf_attention(const Model& m, GGUFWriter& w, int i, DType type) {
  const auto& c = m.cfg;
  const auto& a = m.w.layers[static_cast<size_t>(i)].attn;
  const std::string p = blk(i);
  gguf_add_matrix(w, p + "attn_q.weight", a.wq, type);
  gguf_add_matrix(w, p + "attn_k.weight", a.wk, type);
  gguf_add_matrix(w, p + "attn_v.weight", a.wv, type);
  gguf_add_matrix(w, p + "attn_output.weight", a.wo, type);
  gguf_add_f32(w, p + "attn_q_norm.weight", a.q_norm, {c.head_dim});
  gguf_add_f32(w, p + "attn_k_norm.weight", a.k_norm, {c.head_dim});
}

}  // namespace flashrt

#include "models/model.h"

#include <xxhash.h>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "formats/gguf.h"
#include "formats/safetensors.h"

namespace flashrt {

namespace fs = std::filesystem;

// Defined in the architecture files.
const Architecture& qwen3_architecture();
const Architecture& qwen3_5_architecture();

std::vector<const Architecture*> all_architectures() {
  return {&qwen3_architecture(), &qwen3_5_architecture()};
}

const Architecture* find_architecture_by_hf_type(const std::string& model_type) {
  for (const auto* a : all_architectures())
    for (const auto& t : a->hf_model_types())
      if (t == model_type) return a;
  return nullptr;
}

const Architecture* find_architecture_by_gguf_name(const std::string& name) {
  for (const auto* a : all_architectures())
    if (a->gguf_name() == name) return a;
  return nullptr;
}

void ModelWeights::visit(const std::function<void(const std::string&, Mat&)>& f) {
  f("token_embd", embed);
  f("output_norm", out_norm);
  f("output", lm_head);
  for (size_t i = 0; i < layers.size(); ++i) {
    auto& l = layers[i];
    const std::string p = "blk." + std::to_string(i) + ".";
    f(p + "attn_norm", l.attn_norm);
    f(p + "ffn_norm", l.ffn_norm);
    f(p + "attn_q", l.attn.wq);
    f(p + "attn_k", l.attn.wk);
    f(p + "attn_v", l.attn.wv);
    f(p + "attn_output", l.attn.wo);
    f(p + "attn_q_norm", l.attn.q_norm);
    f(p + "attn_k_norm", l.attn.k_norm);
    f(p + "attn_qkv", l.gdn.wqkv);
    f(p + "attn_gate", l.gdn.wz);
    f(p + "ssm_beta", l.gdn.wb);
    f(p + "ssm_alpha", l.gdn.wa);
    f(p + "ssm_out", l.gdn.wout);
    f(p + "ssm_conv1d", l.gdn.conv);
    f(p + "ssm_a", l.gdn.a_neg);
    f(p + "ssm_dt", l.gdn.dt_bias);
    f(p + "ssm_norm", l.gdn.norm);
    f(p + "ffn_gate", l.mlp.gate);
    f(p + "ffn_up", l.mlp.up);
    f(p + "ffn_down", l.mlp.down);
  }
}

Mat Model::own_f32(std::vector<float> data, int64_t rows, int64_t cols) {
  auto& buf = owned.emplace_back(data.size() * sizeof(float));
  std::memcpy(buf.data(), data.data(), buf.size());
  return Mat{buf.data(), DType::F32, rows, cols};
}

int64_t Model::param_count() const {
  int64_t n = 0;
  const uint8_t* seen_lm = nullptr;
  const_cast<ModelWeights&>(w).visit([&](const std::string& name, Mat& m) {
    if (m.empty()) return;
    if (name == "output") {
      if (m.data == w.embed.data) return;  // tied: counted once
      seen_lm = m.data;
    }
    n += m.rows * m.cols;
  });
  (void)seen_lm;
  return n;
}

uint64_t Model::weights_hash() const {
  if (weights_hash_) return *weights_hash_;
  XXH3_state_t* st = XXH3_createState();
  XXH3_64bits_reset(st);
  const_cast<ModelWeights&>(w).visit([&](const std::string& name, Mat& m) {
    if (m.empty()) return;
    const int64_t head[3] = {static_cast<int64_t>(m.dtype), m.rows, m.cols};
    XXH3_64bits_update(st, name.data(), name.size());
    XXH3_64bits_update(st, head, sizeof head);
    XXH3_64bits_update(st, m.data, m.bytes());
  });
  weights_hash_ = XXH3_64bits_digest(st);
  XXH3_freeState(st);
  return *weights_hash_;
}

size_t Model::weight_bytes() const {
  size_t n = 0;
  const_cast<ModelWeights&>(w).visit([&](const std::string& name, Mat& m) {
    if (m.empty() || (name == "output" && m.data == w.embed.data)) return;
    n += m.bytes();
  });
  return n;
}

void Model::state_bytes(size_t* per_token, size_t* fixed) const {
  StateLayout l;
  arch->add_state_regions(*this, l, 1, DType::F32);
  *per_token = 0;
  *fixed = 0;
  for (const auto& r : l.regions()) {
    if (r.kind == RegionKind::kPositional)
      *per_token += r.bytes_per_row();
    else
      *fixed += r.bytes();
  }
}

StateLayout model_state_layout(const Model& m, int64_t max_ctx, DType kv_dtype) {
  FLASHRT_CHECK(max_ctx > 0, "context size must be positive (got {})", max_ctx);
  StateLayout l;
  m.arch->add_state_regions(m, l, max_ctx, kv_dtype);
  l.add({regions::kTokens, DType::I32, {max_ctx}, RegionKind::kPositional});
  l.add({regions::kPos, DType::I64, {1}, RegionKind::kMeta});
  l.add({regions::kLogits, DType::F32, {m.cfg.vocab}, RegionKind::kMeta});
  return l;
}

namespace {

std::unique_ptr<Model> load_hf(const fs::path& dir) {
  const fs::path cfg_path = dir / "config.json";
  std::ifstream in(cfg_path);
  if (!in) fail("{}: cannot open config.json", dir.string());
  nlohmann::json cfg;
  try {
    cfg = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail("{}: invalid JSON: {}", cfg_path.string(), e.what());
  }
  if (!cfg.is_object()) fail("{}: not a JSON object", cfg_path.string());
  // Multimodal checkpoints keep the language model's settings under text_config.
  const nlohmann::json& text =
      cfg.contains("text_config") && cfg["text_config"].is_object() ? cfg["text_config"] : cfg;
  const std::string type = text.value("model_type", cfg.value("model_type", std::string()));
  const Architecture* arch = find_architecture_by_hf_type(type);
  if (!arch)
    fail("{}: model_type '{}' is not supported (supported: qwen3, qwen3_5_text)", cfg_path.string(),
         type);
  auto m = std::make_unique<Model>();
  m->arch = arch;
  m->format = "hf";
  m->cfg = arch->config_from_hf(text, cfg_path.string());
  m->cfg.validate(cfg_path.string());
  m->sources.push_back(SafetensorsFile::open(dir.string()));
  const TensorSource& src = *m->sources.back();
  if (!src.find("model.embed_tokens.weight") &&
      src.find("model.language_model.embed_tokens.weight"))
    m->hf_prefix = "model.language_model.";
  arch->load_hf_weights(*m, src);
  return m;
}

std::unique_ptr<Model> load_gguf(const std::string& path) {
  auto g = GGUFFile::open(path);
  const std::string name = g->get_string("general.architecture");
  const Architecture* arch = find_architecture_by_gguf_name(name);
  if (!arch) fail("{}: architecture '{}' is not supported (supported: qwen3, qwen35)", path, name);
  auto m = std::make_unique<Model>();
  m->arch = arch;
  m->format = "gguf";
  m->cfg = arch->config_from_gguf(*g);
  m->cfg.validate(path);
  const TensorSource& src = *g;
  m->sources.push_back(std::move(g));
  arch->load_gguf_weights(*m, src);
  return m;
}

}  // namespace

std::unique_ptr<Model> load_model(const std::string& path, const LoadOptions&) {
  std::error_code ec;
  std::unique_ptr<Model> m;
  if (fs::is_directory(path, ec)) {
    m = load_hf(path);
  } else if (fs::is_regular_file(path, ec)) {
    m = load_gguf(path);
  } else {
    fail("{}: no such model file or folder", path);
  }
  m->path = path;
  return m;
}

}  // namespace flashrt

#include "models/model.h"

#include <fmt/ranges.h>
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

std::vector<BoundWeight> Model::weights() {
  FLASHRT_CHECK(w.layers.size() == static_cast<size_t>(cfg.n_layers),
                "internal: {} layer weight sets for {} layers", w.layers.size(), cfg.n_layers);
  WeightList list(cfg, hf_prefix);
  arch->bind_weights(*this, list);
  return std::move(list.items());
}

std::vector<BoundWeight> Model::weights() const {
  // Binding only takes the members' addresses; nothing is written through them here.
  return const_cast<Model*>(this)->weights();
}

std::vector<NamedMat> Model::weight_views() {
  std::vector<NamedMat> v;
  for (BoundWeight& b : weights()) v.push_back({b.name, b.mat});
  return v;
}

Mat Model::own_f32(std::vector<float> data, int64_t rows, int64_t cols) {
  auto& buf = owned.emplace_back(data.size() * sizeof(float));
  std::memcpy(buf.data(), data.data(), buf.size());
  return Mat{buf.data(), DType::F32, rows, cols};
}

int64_t Model::param_count() const {
  int64_t n = 0;
  for (const BoundWeight& b : weights())
    if (!b.tied) n += b.mat->rows * b.mat->cols;
  return n;
}

uint64_t Model::weights_hash() const {
  if (weights_hash_) return *weights_hash_;
  XXH3_state_t* st = XXH3_createState();
  XXH3_64bits_reset(st);
  for (const BoundWeight& b : weights()) {
    const Mat& m = *b.mat;
    const int64_t head[3] = {static_cast<int64_t>(m.dtype), m.rows, m.cols};
    XXH3_64bits_update(st, b.name.data(), b.name.size());
    XXH3_64bits_update(st, head, sizeof head);
    XXH3_64bits_update(st, m.data, m.bytes());
  }
  weights_hash_ = XXH3_64bits_digest(st);
  XXH3_freeState(st);
  return *weights_hash_;
}

size_t Model::weight_bytes() const {
  size_t n = 0;
  for (const BoundWeight& b : weights())
    if (!b.tied) n += b.mat->bytes();
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

void Architecture::add_mtp_state_regions(const Model& m, StateLayout&, int64_t, DType) const {
  fail("{} has no MTP head ({} models have none)", m.path, name());
}

float* Architecture::mtp_forward(const Model& m, ForwardStep&, const float*) const {
  fail("{} has no MTP head ({} models have none)", m.path, name());
}

StateLayout model_state_layout(const Model& m, int64_t max_ctx, DType kv_dtype, bool mtp) {
  FLASHRT_CHECK(max_ctx > 0, "context size must be positive (got {})", max_ctx);
  StateLayout l;
  m.arch->add_state_regions(m, l, max_ctx, kv_dtype);
  if (mtp) {
    FLASHRT_CHECK(m.cfg.mtp_layers == 1,
                  "{} has no MTP head (a Qwen3.5 checkpoint with mtp.* tensors, or a GGUF with "
                  "nextn_predict_layers, has one; make-model --mtp adds a random one)",
                  m.path);
    m.arch->add_mtp_state_regions(m, l, max_ctx, kv_dtype);
  }
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
  if (!arch) {
    std::vector<std::string> known;
    for (const Architecture* a : all_architectures())
      for (const std::string& t : a->hf_model_types()) known.push_back(t);
    fail("{}: model_type '{}' is not supported (supported: {})", cfg_path.string(), type,
         fmt::join(known, ", "));
  }
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
  m->w.layers.resize(static_cast<size_t>(m->cfg.n_layers));
  load_weights(*m, src, WeightFormat::kHF);
  return m;
}

std::unique_ptr<Model> load_gguf(const std::string& path) {
  auto g = GGUFFile::open(path);
  const std::string name = g->get_string("general.architecture");
  const Architecture* arch = find_architecture_by_gguf_name(name);
  if (!arch) {
    std::vector<std::string> known;
    for (const Architecture* a : all_architectures()) known.push_back(a->gguf_name());
    fail("{}: architecture '{}' is not supported (supported: {})", path, name,
         fmt::join(known, ", "));
  }
  auto m = std::make_unique<Model>();
  m->arch = arch;
  m->format = "gguf";
  m->cfg = arch->config_from_gguf(*g);
  m->cfg.validate(path);
  const TensorSource& src = *g;
  m->sources.push_back(std::move(g));
  m->w.layers.resize(static_cast<size_t>(m->cfg.n_layers));
  load_weights(*m, src, WeightFormat::kGGUF);
  return m;
}

}  // namespace

std::unique_ptr<Model> load_model(const std::string& path, Backend& be) {
  auto m = load_model(path);
  m->weights_hash();  // before the backend moves the weights
  be.upload_weights(m->weight_views());
  return m;
}

std::unique_ptr<Model> load_model(const std::string& path) {
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

namespace flashrt {

// llama.cpp's general.file_type for a model mostly stored as `t`.
static uint32_t llama_file_type(DType t) {
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

void write_gguf(const Model& m, GGUFWriter& w, DType type) {
  m.arch->add_gguf_metadata(m, w);
  w.set("general.file_type", GGUFValue::u32(llama_file_type(type)));
  add_gguf_weights(m, w, type);
}

}  // namespace flashrt

// Weights named once. Each block kind of an architecture (its embeddings and head, a layer's norms,
// attention, Gated DeltaNet, MLP) lists its weights in one table: the member it fills, flashrt's
// name, the GGUF and HF names, the shape, how it is stored and how the other format stores it.
// Everything that touches weights walks the tables bound to a model (Model::weights()): loading
// from HF folders and GGUF files, GGUF export, the weights hash of capsule fingerprints, uploads to
// a backend, random models and parameter counts. (llama.cpp's LLM_TENSOR_NAMES is the idea.)
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"
#include "models/config.h"

namespace flashrt {

class GGUFWriter;
class TensorSource;
struct Model;
struct ModelWeights;

// A size a table states shapes in, resolved against the model's config (dim_size).
enum class Dim : uint8_t {
  kOne,
  kVocab,
  kHidden,
  kHidden2,  // 2 * hidden: the MTP projection's input (embedding | hidden state)
  kFfn,
  kHeadDim,
  kQ,        // n_heads * head_dim
  kQGate,    // 2 * n_heads * head_dim: per head the query and its output gate
  kKv,       // n_kv_heads * head_dim
  kConvDim,  // Gated DeltaNet q | k | v channels: 2 * Hk * dk + Hv * dv
  kConvKernel,
  kGdnVHeads,  // Hv
  kGdnVDim,    // dv
  kGdnV,       // Hv * dv
};
int64_t dim_size(Dim d, const ModelConfig& c);

enum class Storage : uint8_t {
  // A matrix the kernels multiply with, used as stored in the file (F32, F16, BF16, Q8_0, Q4_0,
  // Q4_K, Q6_K); exported in the requested type.
  kMatrix,
  // A small tensor (norm weights, decay rates, conv taps) converted to f32 at load, owned by the
  // model, exported as F32. Any shape with rows x cols values is accepted.
  kF32,
};

// The values a random model draws for a weight (flashrt make-model): kNormal draws mean a, std b;
// kUniform draws from [a, b). Matrices are stored as BF16, kF32 weights as f32.
struct RandomInit {
  enum Kind : uint8_t { kNormal, kUniform } kind = kNormal;
  float a = 0.0f, b = 0.02f;
};
inline constexpr RandomInit kMatrixInit{RandomInit::kNormal, 0.0f, 0.02f};
inline constexpr RandomInit kNormInit{RandomInit::kNormal, 1.0f, 0.02f};

// For each destination row (or column) the source one; empty keeps the order.
using IndexMap = std::vector<int64_t>;

// One weight of a block kind. Names are relative to the block (see WeightList::add). The GGUF form
// is flashrt's own: an HF weight stored another way is converted at load (from_hf), and GGUF
// export only reorders rows or columns where llama.cpp's layout needs it. Tables are written with
// matrix() / f32() / norm() and the modifiers below, e.g.
//   f32(&GdnWeights::a_neg, "ssm_a", "linear_attn.A_log", Dim::kOne, Dim::kGdnVHeads)
//       .gguf_as("ssm_a").hf_stores(neg_exp)
template <class Block>
struct WeightSpec {
  Mat Block::*member;
  const char* name;  // flashrt's name: the weights hash, Model::weights(), messages ("attn_q")
  const char* gguf;  // llama.cpp's tensor name; nullptr: name + ".weight"
  const char* hf;    // transformers' name ("self_attn.q_proj.weight"; "{m}" = the model prefix)
  Dim rows, cols;
  Storage storage = Storage::kMatrix;
  float (*from_hf)(float) = nullptr;                    // HF stores f^-1 of the value
  IndexMap (*gguf_rows)(const ModelConfig&) = nullptr;  // export: llama.cpp's row order
  IndexMap (*gguf_cols)(const ModelConfig&) = nullptr;  // export: llama.cpp's column order
  RandomInit init = kMatrixInit;
  // When the model ties its embeddings this weight is the token embedding and not in the file.
  bool tied_to_embedding = false;

  WeightSpec gguf_as(const char* g) const {
    return with([&](WeightSpec& s) { s.gguf = g; });
  }
  // The value used is f(the value HF stores): A_log -> -exp(A_log), a zero-centered norm w -> 1 +
  // w.
  WeightSpec hf_stores(float (*f)(float)) const {
    return with([&](WeightSpec& s) { s.from_hf = f; });
  }
  WeightSpec gguf_row_order(IndexMap (*f)(const ModelConfig&)) const {
    return with([&](WeightSpec& s) { s.gguf_rows = f; });
  }
  WeightSpec gguf_col_order(IndexMap (*f)(const ModelConfig&)) const {
    return with([&](WeightSpec& s) { s.gguf_cols = f; });
  }
  WeightSpec random(RandomInit r) const {
    return with([&](WeightSpec& s) { s.init = r; });
  }
  WeightSpec tied() const {
    return with([](WeightSpec& s) { s.tied_to_embedding = true; });
  }

 private:
  template <class F>
  WeightSpec with(F f) const {
    WeightSpec s = *this;
    f(s);
    return s;
  }
};
template <class Block>
using WeightTable = std::vector<WeightSpec<Block>>;

// A matrix the kernels multiply with, [rows, cols] = [out_features, in_features].
template <class Block>
WeightSpec<Block> matrix(Mat Block::*member, const char* name, const char* hf, Dim rows, Dim cols) {
  return {member, name, nullptr, hf, rows, cols};
}
// A small tensor converted to f32 at load.
template <class Block>
WeightSpec<Block> f32(Mat Block::*member, const char* name, const char* hf, Dim rows, Dim cols) {
  return {member,        name,    nullptr, hf,      rows,     cols,
          Storage::kF32, nullptr, nullptr, nullptr, kNormInit};
}
// RMSNorm multipliers [n] (f32).
template <class Block>
WeightSpec<Block> norm(Mat Block::*member, const char* name, const char* hf, Dim n) {
  return f32(member, name, hf, Dim::kOne, n);
}

// HF's forms of values flashrt stores as llama.cpp does.
float zero_centered(float w);  // 1 + w: Qwen3.5's norms store w and apply 1 + w
float neg_exp(float a_log);    // -exp(A_log): the Gated DeltaNet decay rate (llama.cpp's ssm_a)

// A weight of one block instance of a model: the spec with its names resolved, and its view.
struct BoundWeight {
  std::string name, gguf, hf;  // "blk.3.attn_q", "blk.3.attn_q.weight", "model.layers.3...."
  int64_t rows = 0, cols = 0;
  Storage storage = Storage::kMatrix;
  Mat* mat = nullptr;
  const Mat* tied = nullptr;  // this weight is that one (tied embeddings)
  float (*from_hf)(float) = nullptr;
  IndexMap gguf_rows, gguf_cols;
  RandomInit init;
};

// The weight tables of one model bound to its blocks, in order (the order of the weights hash).
class WeightList {
 public:
  WeightList(const ModelConfig& cfg, std::string hf_model_prefix)
      : cfg_(cfg), hf_model_prefix_(std::move(hf_model_prefix)) {}

  // Binds `table` to `block`. GGUF and HF names are prefixed (`gguf_prefix`, `hf_prefix`, in which
  // "{i}" is the layer and "{m}" the model prefix); flashrt's names take the GGUF prefix.
  template <class Block>
  void add(const WeightTable<Block>& table, Block& block, std::string_view gguf_prefix,
           std::string_view hf_prefix, int layer = -1, const Mat* embedding = nullptr) {
    for (const auto& s : table) {
      BoundWeight& b = begin(s.name, s.gguf ? s.gguf : std::string(s.name) + ".weight", s.hf,
                             s.rows, s.cols, gguf_prefix, hf_prefix, layer);
      b.storage = s.storage;
      b.mat = &(block.*s.member);
      b.tied = s.tied_to_embedding && cfg_.tied_embeddings ? embedding : nullptr;
      b.from_hf = s.from_hf;
      if (s.gguf_rows) b.gguf_rows = s.gguf_rows(cfg_);
      if (s.gguf_cols) b.gguf_cols = s.gguf_cols(cfg_);
      b.init = s.init;
    }
  }
  // The standard places: the model's own weights (embedding, final norm, head) at the top of both
  // formats, layer i's under "blk.{i}." (GGUF) and "{m}layers.{i}." (HF).
  void add_model(const WeightTable<ModelWeights>& table, ModelWeights& w);
  template <class Block>
  void add_layer(const WeightTable<Block>& table, Block& block, int layer) {
    add(table, block, "blk.{i}.", "{m}layers.{i}.", layer);
  }
  std::vector<BoundWeight>& items() { return items_; }

 private:
  BoundWeight& begin(const char* name, const std::string& gguf, const char* hf, Dim rows, Dim cols,
                     std::string_view gguf_prefix, std::string_view hf_prefix, int layer);
  const ModelConfig& cfg_;
  std::string hf_model_prefix_;
  std::vector<BoundWeight> items_;
};

// ---- what the tables drive (weights.cpp) ----

enum class WeightFormat : uint8_t { kHF, kGGUF };
// Fills every weight of `m` from `src` by its HF or GGUF name, checking shapes and types, and
// records the file's tensors that no table names in m.unused_tensors.
void load_weights(Model& m, const TensorSource& src, WeightFormat format);
// Adds every weight of `m` to `w` in llama.cpp's names and layouts; matrices in `type` (or the
// nearest type their rows allow), kF32 weights as F32.
void add_gguf_weights(const Model& m, GGUFWriter& w, DType type);

// The type a matrix is stored as when converting to `type`: the requested type where its block
// size divides the row, else a fallback as llama-quantize picks (and f32 at last).
DType export_type(const Mat& m, DType type);

}  // namespace flashrt

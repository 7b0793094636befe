// A loaded model: its configuration, its weights (views into the mapped files, plus the few small
// tensors converted at load time) and the architecture that knows its names, state and forward
// pass.
#pragma once
#include <cstdint>
#include <deque>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "backends/backend.h"
#include "core/arena.h"
#include "core/tensor.h"
#include "formats/tensor_source.h"
#include "models/config.h"
#include "models/forward_step.h"
#include "models/weights.h"

namespace flashrt {

class GGUFFile;
class GGUFWriter;

// The weights of each block kind, as plain views (llama2.c's TransformerWeights). Which members an
// architecture uses, and under which names, its weight tables say (weights.h).
struct AttentionWeights {
  Mat wq, wk, wv, wo;
  Mat q_norm, k_norm;  // f32 [head_dim], multipliers (zero-centered norms already have the +1)
};

struct GdnWeights {
  Mat wqkv, wz, wb, wa, wout;  // in_proj_qkv, in_proj_z, in_proj_b, in_proj_a, out_proj
  Mat conv;                    // f32 [conv_dim, K]
  Mat a_neg;                   // f32 [Hv] = -exp(A_log)
  Mat dt_bias;                 // f32 [Hv]
  Mat norm;                    // f32 [v_dim] gated output norm (plain, not zero-centered)
};

struct MlpWeights {
  Mat gate, up, down;
};

struct LayerWeights {
  Mat attn_norm, ffn_norm;  // f32 [hidden] multipliers
  AttentionWeights attn;
  GdnWeights gdn;
  MlpWeights mlp;
};

// A multi-token prediction head (Qwen3.5's mtp.*): from the embedding of token t+1 and the main
// model's final hidden state at t, one decoder layer predicts token t+2 through the shared LM head.
struct MtpWeights {
  Mat fc;            // [hidden, 2 * hidden] over [enorm(embed(t+1)) | hnorm(h_t)]
  Mat enorm, hnorm;  // f32 [hidden]
  Mat out_norm;      // f32 [hidden], before the shared LM head
  LayerWeights layer;
};

struct ModelWeights {
  Mat embed;     // [vocab, hidden]
  Mat out_norm;  // f32 [hidden]
  Mat lm_head;   // [vocab, hidden]; the embedding when tied
  std::vector<LayerWeights> layers;
  MtpWeights mtp;  // when cfg.mtp_layers == 1
};

struct Model;

class Architecture {
 public:
  virtual ~Architecture() = default;
  virtual std::string name() const = 0;       // flashrt's name ("qwen3")
  virtual std::string gguf_name() const = 0;  // llama.cpp's general.architecture ("qwen3")
  virtual std::vector<std::string> hf_model_types() const = 0;  // config.json model_type values

  virtual ModelConfig config_from_hf(const nlohmann::json& config,
                                     const std::string& path) const = 0;
  virtual ModelConfig config_from_gguf(const GGUFFile& f) const = 0;
  // Named real shapes for random-weight models (`flashrt make-model --shape`), e.g. "0.6b".
  virtual std::vector<std::pair<std::string, ModelConfig>> shapes() const = 0;
  // The weight tables bound to m's blocks, in order (m.w.layers has one entry per layer).
  virtual void bind_weights(Model& m, WeightList& out) const = 0;
  // llama.cpp's metadata keys of this architecture (the tensors come from the weight tables).
  virtual void add_gguf_metadata(const Model& m, GGUFWriter& w) const = 0;

  // The model's state regions of one slot (the engine adds its own meta regions).
  // KV cache regions hold kv_dtype (F32, or F16 for half the memory and bandwidth).
  virtual void add_state_regions(const Model& m, StateLayout& layout, int64_t max_ctx,
                                 DType kv_dtype) const = 0;
  // The forward pass over the rows of a step: embeds the rows' tokens, runs the layers (each
  // sequence's state in its slot advances over its rows) and returns the final hidden state of
  // every row [T, hidden] after the last norm, taken from s.ws. The engine does the rest of a
  // step (engine/step_runner.h): it stores the tokens, applies the LM head, leaves the logits and
  // advances the positions, for every architecture alike.
  virtual float* forward(const Model& m, ForwardStep& s) const = 0;

  // ---- multi-token prediction (a model with an MTP head: cfg.mtp_layers == 1) ----
  // The MTP head's state regions of a slot that runs it: its layer's KV, positional and one row
  // behind (RegionSpec::lag), and the main model's last hidden state (regions::kMtpHidden). With
  // them in the layout, forward() also advances the MTP layer over the pairs each step completes
  // (ForwardStep::mtp). The default refuses: the architecture has no MTP head.
  virtual void add_mtp_state_regions(const Model& m, StateLayout& layout, int64_t max_ctx,
                                     DType kv_dtype) const;
  // The MTP layer alone over s.rows (each a token at its MTP position) with the hidden states
  // h_in [T, hidden] it pairs them with: writes its KV rows there and returns [T, hidden] after
  // the MTP norm, whose LM head logits predict the token after the next (a draft) and which is
  // the hidden state the next draft pairs with.
  virtual float* mtp_forward(const Model& m, ForwardStep& s, const float* h_in) const;

  // ---- recurrent state after a prefix of a step (speculative rollback) ----
  // With the slot's fixed regions back at their values before a step recorded in `trace`
  // (ForwardStep::trace), advances its recurrent and conv state over the first s.T() rows again:
  // afterwards they hold what the step had after those rows. The default: nothing recurrent.
  virtual void replay_recurrent(const Model& /*m*/, ForwardStep& /*s*/,
                                const GdnTrace& /*trace*/) const {}
};

// The registry (models/registry.cpp): every architecture flashrt runs.
std::vector<const Architecture*> all_architectures();
const Architecture* find_architecture(const std::string& name);  // flashrt's name ("qwen3_5")
const Architecture* find_architecture_by_hf_type(const std::string& model_type);
const Architecture* find_architecture_by_gguf_name(const std::string& name);

struct Model {
  ModelConfig cfg;
  ModelWeights w;
  const Architecture* arch = nullptr;
  std::string path;                  // what the user passed
  std::string format;                // "hf", "gguf" or "random"
  std::string hf_prefix = "model.";  // "model.language_model." in multimodal checkpoints
  // Keeps the mapped files and load-time conversions alive for the Mat views.
  std::vector<std::unique_ptr<TensorSource>> sources;
  std::deque<std::vector<uint8_t>> owned;
  // Tensors in the model's files that no weight table names.
  std::vector<std::string> unused_tensors;
  mutable std::optional<uint64_t> weights_hash_;

  Model() = default;
  Model(const Model&) = delete;  // weights() points into w
  Model& operator=(const Model&) = delete;

  // Every weight: the architecture's tables bound to this model's blocks, in a fixed order (the
  // order of the weights hash).
  std::vector<BoundWeight> weights();
  std::vector<BoundWeight> weights() const;  // the same, for reading
  // The weights as named views, for Backend::upload_weights.
  std::vector<NamedMat> weight_views();
  // Stores a small f32 tensor owned by the model and returns a view of it.
  Mat own_f32(std::vector<float> data, int64_t rows, int64_t cols);
  int64_t param_count() const;  // a tied LM head counts once
  // xxh3-64 over every weight's name, dtype, shape and bytes (computed once, on first use; call it
  // before a backend moves the weights to device memory).
  uint64_t weights_hash() const;
  size_t weight_bytes() const;
  // Bytes of state per token (positional regions) and fixed state bytes, for `flashrt info`.
  void state_bytes(size_t* per_token, size_t* fixed) const;
};

// Loads an HF folder (config.json + safetensors) or a .gguf file for `be`: reads the files,
// computes the weights' hash (capsule fingerprints read the host bytes) and then lets the backend
// take the weights (a GPU copies them to device memory; the CPU onto huge pages). This is the way
// to load a model to run it.
std::unique_ptr<Model> load_model(const std::string& path, Backend& be);
// The same without a backend: the weights stay in the files' mappings, which is all a converter
// needs (and what the CPU backend can also run from, a little slower than from huge pages).
std::unique_ptr<Model> load_model(const std::string& path);
// GGUF export in llama.cpp's names, keys and layouts; `type` is the type of the weight matrices.
void write_gguf(const Model& m, GGUFWriter& w, DType type);

// The standard regions every slot has besides the model's own, written by the forward pass.
namespace regions {
inline constexpr const char* kPos = "meta.pos";        // i64 [1]: tokens processed
inline constexpr const char* kLogits = "meta.logits";  // f32 [vocab]: logits of the last token
inline constexpr const char* kTokens = "tokens";       // i32 [max_ctx]: the token at each position
// f32 [hidden]: the main model's final hidden state at the last position, which the MTP pair
// completed by the next token takes (slots that run an MTP head).
inline constexpr const char* kMtpHidden = "mtp.hidden";
}  // namespace regions

// The full layout of one slot of `m`: the model's regions plus the standard ones, and with `mtp`
// the MTP head's (the model must have one).
StateLayout model_state_layout(const Model& m, int64_t max_ctx, DType kv_dtype = DType::F32,
                               bool mtp = false);

}  // namespace flashrt

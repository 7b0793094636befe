// Pieces shared by the architecture files: loading weights with shape checks, and the transformer
// blocks (attention, gated attention, Gated DeltaNet, SwiGLU MLP, output head) written in Backend
// ops.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "formats/gguf.h"
#include "models/model.h"

namespace flashrt {

// ---- loading ----

// A weight matrix [rows, cols] used straight from the file. Checks shape and dtype.
Mat load_matrix(const TensorSource& src, const std::string& name, int64_t rows, int64_t cols);
// A small tensor of `n` elements converted to f32 (owned by the model), each value passed through
// `f` when given. Any shape with n elements is accepted (conv weights come as [C,1,K] or [C,K]).
Mat load_f32(Model& m, const TensorSource& src, const std::string& name, int64_t rows, int64_t cols,
             const std::function<float(float)>& f = nullptr);
// Reads a tensor of any plain or quantized dtype as f32 values.
std::vector<float> read_f32(const TensorInfo& t);

// ---- GGUF export helpers ----

// Adds a matrix converting it to `type` (rows are dequantized then quantized one at a time).
// `row_map` (optional) picks source rows for destination rows; `col_map` likewise for columns.
void gguf_add_matrix(GGUFWriter& w, const std::string& name, const Mat& m, DType type,
                     std::vector<int64_t> row_map = {}, std::vector<int64_t> col_map = {});
void gguf_add_f32(GGUFWriter& w, const std::string& name, const Mat& m, std::vector<int64_t> shape,
                  const std::function<float(float)>& f = nullptr,
                  std::vector<int64_t> row_map = {});
// The type a matrix is stored as when converting to `type`: the requested type where its block
// size divides the row, else f32 (and matrices already in that type are copied as they are).
DType export_type(const Mat& m, DType type);

// ---- forward ----

// A bump allocator over the backend's scratch buffer.
class Bump {
 public:
  explicit Bump(float* p) : p_(p) {}
  float* take(int64_t n) {
    float* r = p_;
    p_ += (n + 15) / 16 * 16;  // keep 64-byte alignment
    return r;
  }

 private:
  float* p_;
};

size_t attention_scratch(const ModelConfig& c, int T);
size_t gdn_scratch(const ModelConfig& c, int T);
size_t mlp_scratch(const ModelConfig& c, int T);

// x [T, hidden] += attention(rmsnorm(x)), appending K/V rows to the slot.
void attention_block(Backend& be, const Model& m, int layer, Arena& slot, float* x, int T, Bump ws);
// x += GatedDeltaNet(rmsnorm(x)), advancing the layer's conv and recurrent state.
void gdn_block(Backend& be, const Model& m, int layer, Arena& slot, float* x, int T, Bump ws,
               GdnMode mode);
// x += mlp(rmsnorm(x))
void mlp_block(Backend& be, const Model& m, int layer, float* x, int T, Bump ws);
// Final norm and LM head: the last position's logits into the slot's logits region (and every
// position's into all_logits when given).
void output_logits(Backend& be, const Model& m, Arena& slot, float* x, int T, float* all_logits,
                   Bump ws);

// The common forward of a decoder: embed, the layers in order, logits, advance.
void decoder_forward(const Model& m, Backend& be, const ForwardArgs& a);

std::string kv_region(int layer, char kv);  // "attn.{layer}.k" / ".v"
std::string gdn_conv_region(int layer);     // "gdn.{layer}.conv"
std::string gdn_state_region(int layer);    // "gdn.{layer}.state"
// KV regions for every attention layer, conv + recurrent state for every GDN layer.
// KV regions of kv_dtype (F32 or F16); recurrent and conv state always F32.
void add_decoder_regions(const Model& m, StateLayout& l, int64_t max_ctx, DType kv_dtype);
size_t decoder_scratch(const Model& m, int T);

}  // namespace flashrt

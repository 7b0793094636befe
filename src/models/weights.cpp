#include "models/weights.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <unordered_set>

#include "core/error.h"
#include "formats/gguf.h"
#include "formats/quant.h"
#include "models/model.h"

namespace flashrt {

int64_t dim_size(Dim d, const ModelConfig& c) {
  switch (d) {
    case Dim::kOne:
      return 1;
    case Dim::kVocab:
      return c.vocab;
    case Dim::kHidden:
      return c.hidden;
    case Dim::kHidden2:
      return 2 * c.hidden;
    case Dim::kFfn:
      return c.ffn;
    case Dim::kHeadDim:
      return c.head_dim;
    case Dim::kQ:
      return static_cast<int64_t>(c.n_heads) * c.head_dim;
    case Dim::kQGate:
      return 2LL * c.n_heads * c.head_dim;
    case Dim::kKv:
      return static_cast<int64_t>(c.n_kv_heads) * c.head_dim;
    case Dim::kConvDim:
      return c.gdn_conv_dim();
    case Dim::kConvKernel:
      return c.conv_kernel;
    case Dim::kGdnVHeads:
      return c.gdn_v_heads;
    case Dim::kGdnVDim:
      return c.gdn_v_dim;
    case Dim::kGdnV:
      return static_cast<int64_t>(c.gdn_v_heads) * c.gdn_v_dim;
  }
  return 0;
}

float zero_centered(float w) {
  return w + 1.0f;
}
float neg_exp(float a_log) {
  return -std::exp(a_log);
}

namespace {

// `pattern` with "{i}" replaced by the layer and "{m}" by the HF model prefix.
std::string expand(std::string_view pattern, int layer, const std::string& model_prefix) {
  std::string out;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern.substr(i, 3) == "{i}") {
      out += std::to_string(layer);
      i += 2;
    } else if (pattern.substr(i, 3) == "{m}") {
      out += model_prefix;
      i += 2;
    } else {
      out += pattern[i];
    }
  }
  return out;
}

bool is_weight_dtype(DType t) {
  switch (t) {
    case DType::F32:
    case DType::F16:
    case DType::BF16:
    case DType::Q8_0:
    case DType::Q4_0:
    case DType::Q4_K:
    case DType::Q6_K:
      return true;
    default:
      return false;
  }
}

// A matrix used straight from the file. Checks shape and dtype.
Mat load_matrix(const TensorSource& src, const TensorInfo& t, int64_t rows, int64_t cols) {
  const bool ok = (t.shape.size() == 2 && t.shape[0] == rows && t.shape[1] == cols) ||
                  (t.shape.size() == 1 && rows == 1 && t.shape[0] == cols);
  if (!ok)
    fail("{}: tensor '{}' has shape [{}], expected [{}, {}]", src.describe(), t.name,
         fmt::join(t.shape, ", "), rows, cols);
  if (!is_weight_dtype(t.dtype))
    fail("{}: tensor '{}' has type {}, which flashrt cannot multiply with", src.describe(), t.name,
         dtype_name(t.dtype));
  return Mat{t.data, t.dtype, rows, cols};
}

// A small tensor of rows x cols values converted to f32 (owned by the model), each value passed
// through `f` when given. Any shape with that many values is accepted (conv weights come as
// [C, 1, K] or [C, K]).
Mat load_f32(Model& m, const TensorSource& src, const TensorInfo& t, int64_t rows, int64_t cols,
             float (*f)(float)) {
  if (t.elements() != rows * cols)
    fail("{}: tensor '{}' has shape [{}] ({} values), expected {} x {}", src.describe(), t.name,
         fmt::join(t.shape, ", "), t.elements(), rows, cols);
  if (!is_weight_dtype(t.dtype))
    fail("{}: tensor '{}' has unsupported type {}", src.describe(), t.name, dtype_name(t.dtype));
  std::vector<float> v(static_cast<size_t>(t.elements()));
  dequantize_row(t.dtype, t.data, v.data(), t.elements());
  if (f)
    for (float& x : v) x = f(x);
  return m.own_f32(std::move(v), rows, cols);
}

// Adds a matrix converting it to `type` (rows are dequantized then quantized one at a time).
// `row_map` (optional) picks source rows for destination rows; `col_map` likewise for columns.
void add_matrix(GGUFWriter& w, const std::string& name, const Mat& m, DType type, IndexMap row_map,
                IndexMap col_map) {
  const DType out = export_type(m, type);
  if (out == m.dtype && row_map.empty() && col_map.empty()) {
    w.add_tensor_bytes(name, out, {m.rows, m.cols}, m.data);
    return;
  }
  w.add_tensor(name, out, {m.rows, m.cols}, [m, out, row_map, col_map](uint8_t* dst) {
    std::vector<float> row(static_cast<size_t>(m.cols)), mapped(static_cast<size_t>(m.cols));
    const size_t out_row = dtype_bytes(out, m.cols);
    for (int64_t r = 0; r < m.rows; ++r) {
      const int64_t sr = row_map.empty() ? r : row_map[static_cast<size_t>(r)];
      dequantize_row(m.dtype, m.row(sr), row.data(), m.cols);
      const float* src = row.data();
      if (!col_map.empty()) {
        for (int64_t c = 0; c < m.cols; ++c)
          mapped[static_cast<size_t>(c)] =
              row[static_cast<size_t>(col_map[static_cast<size_t>(c)])];
        src = mapped.data();
      }
      quantize_row(out, src, dst + out_row * static_cast<size_t>(r), m.cols);
    }
  });
}

// Adds a tensor as F32 of `shape` (rows of `m`, reordered by `row_map` when given).
void add_f32(GGUFWriter& w, const std::string& name, const Mat& m, std::vector<int64_t> shape,
             IndexMap row_map) {
  w.add_tensor(name, DType::F32, std::move(shape), [m, row_map](uint8_t* dst) {
    auto* out = reinterpret_cast<float*>(dst);
    for (int64_t r = 0; r < m.rows; ++r) {
      const int64_t sr = row_map.empty() ? r : row_map[static_cast<size_t>(r)];
      dequantize_row(m.dtype, m.row(sr), out + r * m.cols, m.cols);
    }
  });
}

}  // namespace

BoundWeight& WeightList::begin(const char* name, const std::string& gguf, const char* hf, Dim rows,
                               Dim cols, std::string_view gguf_prefix, std::string_view hf_prefix,
                               int layer) {
  BoundWeight& b = items_.emplace_back();
  const std::string gp = expand(gguf_prefix, layer, hf_model_prefix_);
  b.name = gp + name;
  b.gguf = gp + gguf;
  b.hf = expand(hf_prefix, layer, hf_model_prefix_) + expand(hf, layer, hf_model_prefix_);
  b.rows = dim_size(rows, cfg_);
  b.cols = dim_size(cols, cfg_);
  return b;
}

void WeightList::add_model(const WeightTable<ModelWeights>& table, ModelWeights& w) {
  add(table, w, "", "", -1, &w.embed);
}

void load_weights(Model& m, const TensorSource& src, WeightFormat format) {
  std::unordered_set<std::string> used;
  for (BoundWeight& b : m.weights()) {
    if (b.tied) {
      *b.mat = *b.tied;
      continue;
    }
    const std::string& name = format == WeightFormat::kHF ? b.hf : b.gguf;
    const TensorInfo* t = src.find(name);
    if (!t)
      fail("{}: tensor '{}' is missing (flashrt's {} of a {} model)", src.describe(), name, b.name,
           m.arch->name());
    used.insert(name);
    if (b.storage == Storage::kMatrix)
      *b.mat = load_matrix(src, *t, b.rows, b.cols);
    else
      *b.mat =
          load_f32(m, src, *t, b.rows, b.cols, format == WeightFormat::kHF ? b.from_hf : nullptr);
  }
  for (const std::string& n : src.names())
    if (!used.contains(n)) m.unused_tensors.push_back(n);
}

// Rows that are not whole blocks of the requested type fall back as llama-quantize does: the
// 256-value K-quants to a 32-value type of similar size (q4_k -> q4_0, q6_k -> q8_0), anything
// else to f32.
DType export_type(const Mat& m, DType type) {
  if (m.cols % dtype_info(type).block_elems == 0) return type;
  const DType fallback = type == DType::Q4_K   ? DType::Q4_0
                         : type == DType::Q6_K ? DType::Q8_0
                                               : DType::F32;
  return m.cols % dtype_info(fallback).block_elems == 0 ? fallback : DType::F32;
}

void add_gguf_weights(const Model& m, GGUFWriter& w, DType type) {
  for (const BoundWeight& b : m.weights()) {
    if (b.tied) continue;  // the file holds the embedding once
    const Mat& mat = *b.mat;
    FLASHRT_CHECK(b.storage == Storage::kMatrix || b.gguf_cols.empty(),
                  "internal: {}: a GGUF column order applies to matrices only", b.name);
    if (b.storage == Storage::kMatrix) {
      add_matrix(w, b.gguf, mat, type, b.gguf_rows, b.gguf_cols);
    } else if (b.rows == 1) {
      // A vector: 1-D in the file. Reordered elements are rows of one value each.
      const Mat v = b.gguf_rows.empty() ? mat : Mat{mat.data, mat.dtype, mat.cols, 1};
      add_f32(w, b.gguf, v, {b.cols}, b.gguf_rows);
    } else {
      add_f32(w, b.gguf, mat, {b.rows, b.cols}, b.gguf_rows);
    }
  }
}

}  // namespace flashrt

// Qwen3.5 text decoder (qwen3_5_text; GGUF "qwen35"): a hybrid of Gated DeltaNet layers and gated
// full attention (every `full_attention_interval`-th layer). Zero-centered RMSNorm (1 + w) for the
// block, final and q/k norms; a plain gated RMSNorm on the GDN output; partial rotate-half RoPE.
#include <cmath>

#include "core/error.h"
#include "formats/gguf.h"
#include "formats/hf_config.h"
#include "models/blocks.h"
#include "models/qwen_common.h"

namespace flashrt {

namespace {

std::string blk(int i) {
  return "blk." + std::to_string(i) + ".";
}

// llama.cpp's converter stores value heads "tiled" ([G0v0, G1v0, .., G0v1, ..]) instead of HF's
// "grouped" order ([G0v0, G0v1, .., G1v0, ..]) so that ggml can broadcast key heads by repetition.
// Returns, for each destination row (head-major, `dim` rows per head), the source row.
std::vector<int64_t> grouped_to_tiled_rows(int k_heads, int v_heads, int64_t dim,
                                           int64_t offset = 0, int64_t leading = 0) {
  std::vector<int64_t> map;
  for (int64_t r = 0; r < leading; ++r) map.push_back(r);
  const int per_k = v_heads / k_heads;
  for (int n = 0; n < v_heads; ++n) {
    const int src_head = (n % k_heads) * per_k + n / k_heads;
    for (int64_t d = 0; d < dim; ++d) map.push_back(offset + src_head * dim + d);
  }
  return map;
}

class Qwen35 : public Architecture {
 public:
  std::string name() const override { return "qwen3_5"; }
  std::string gguf_name() const override { return "qwen35"; }
  std::vector<std::string> hf_model_types() const override { return {"qwen3_5_text", "qwen3_5"}; }

  ModelConfig config_from_hf(const nlohmann::json& j, const std::string& path) const override {
    HFConfig h(j, path);
    ModelConfig c = common_hf_config(h);
    c.arch = name();
    c.attn_output_gate = h.get_bool("attn_output_gate", true);
    const double partial =
        h.child("rope_parameters")
            .get_float("partial_rotary_factor", h.get_float("partial_rotary_factor", 0.25));
    c.rope_dim = static_cast<int>(c.head_dim * partial);
    c.conv_kernel = static_cast<int>(h.get_int("linear_conv_kernel_dim", 4));
    c.gdn_k_heads = static_cast<int>(h.get_int("linear_num_key_heads"));
    c.gdn_v_heads = static_cast<int>(h.get_int("linear_num_value_heads"));
    c.gdn_k_dim = static_cast<int>(h.get_int("linear_key_head_dim"));
    c.gdn_v_dim = static_cast<int>(h.get_int("linear_value_head_dim"));
    const auto types = h.get_string_list("layer_types");
    if (!types.empty()) {
      FLASHRT_CHECK(static_cast<int>(types.size()) == c.n_layers,
                    "{}: {} layer_types for {} layers", path, types.size(), c.n_layers);
      for (const auto& t : types) {
        if (t == "full_attention")
          c.layers.push_back(LayerKind::kAttention);
        else if (t == "linear_attention")
          c.layers.push_back(LayerKind::kGatedDeltaNet);
        else
          fail("{}: layer type '{}' is not supported", path, t);
      }
    } else {
      const int64_t interval = h.get_int("full_attention_interval", 4);
      FLASHRT_CHECK(interval > 0, "{}: full_attention_interval must be positive", path);
      for (int i = 0; i < c.n_layers; ++i)
        c.layers.push_back((i + 1) % interval == 0 ? LayerKind::kAttention
                                                   : LayerKind::kGatedDeltaNet);
    }
    return c;
  }

  ModelConfig config_from_gguf(const GGUFFile& f) const override {
    const std::string p = gguf_name() + ".";
    ModelConfig c = common_gguf_config(f, gguf_name());
    c.arch = name();
    c.attn_output_gate = true;
    c.conv_kernel = static_cast<int>(f.get_int(p + "ssm.conv_kernel"));
    c.gdn_k_dim = static_cast<int>(f.get_int(p + "ssm.state_size"));
    c.gdn_k_heads = static_cast<int>(f.get_int(p + "ssm.group_count"));
    c.gdn_v_heads = static_cast<int>(f.get_int(p + "ssm.time_step_rank"));
    FLASHRT_CHECK(c.gdn_v_heads > 0, "{}: ssm.time_step_rank must be positive", f.describe());
    c.gdn_v_dim = static_cast<int>(f.get_int(p + "ssm.inner_size") / c.gdn_v_heads);
    c.gdn_tiled_heads = true;
    if (const GGUFValue* rl = f.get_meta(p + "attention.recurrent_layers")) {
      std::vector<int64_t> flags;
      try {
        flags = rl->as_int_array();
      } catch (const Error& e) {
        fail("{}: {}attention.recurrent_layers: {}", f.describe(), p, e.what());
      }
      FLASHRT_CHECK(static_cast<int>(flags.size()) >= c.n_layers,
                    "{}: recurrent_layers lists {} of {} layers", f.describe(), flags.size(),
                    c.n_layers);
      for (int i = 0; i < c.n_layers; ++i)
        c.layers.push_back(flags[static_cast<size_t>(i)] ? LayerKind::kGatedDeltaNet
                                                         : LayerKind::kAttention);
    } else {
      const int64_t interval = f.get_int_opt(p + "full_attention_interval").value_or(4);
      FLASHRT_CHECK(interval > 0, "{}: full_attention_interval must be positive", f.describe());
      for (int i = 0; i < c.n_layers; ++i)
        c.layers.push_back((i + 1) % interval == 0 ? LayerKind::kAttention
                                                   : LayerKind::kGatedDeltaNet);
    }
    return c;
  }

  void load_hf_weights(Model& m, const TensorSource& src) const override {
    load_hf_common(m, src, /*zero_centered=*/true);
    const auto& c = m.cfg;
    for (int i = 0; i < c.n_layers; ++i) {
      if (c.layers[static_cast<size_t>(i)] == LayerKind::kAttention) {
        load_hf_attention(m, src, i, /*zero_centered=*/true);
        continue;
      }
      auto& g = m.w.layers[static_cast<size_t>(i)].gdn;
      const std::string p = m.hf_prefix + "layers." + std::to_string(i) + ".linear_attn.";
      const int64_t vd = static_cast<int64_t>(c.gdn_v_heads) * c.gdn_v_dim;
      g.wqkv = load_matrix(src, p + "in_proj_qkv.weight", c.gdn_conv_dim(), c.hidden);
      g.wz = load_matrix(src, p + "in_proj_z.weight", vd, c.hidden);
      g.wb = load_matrix(src, p + "in_proj_b.weight", c.gdn_v_heads, c.hidden);
      g.wa = load_matrix(src, p + "in_proj_a.weight", c.gdn_v_heads, c.hidden);
      g.wout = load_matrix(src, p + "out_proj.weight", c.hidden, vd);
      g.conv = load_f32(m, src, p + "conv1d.weight", c.gdn_conv_dim(), c.conv_kernel);
      g.a_neg =
          load_f32(m, src, p + "A_log", 1, c.gdn_v_heads, [](float x) { return -std::exp(x); });
      g.dt_bias = load_f32(m, src, p + "dt_bias", 1, c.gdn_v_heads);
      g.norm = load_f32(m, src, p + "norm.weight", 1, c.gdn_v_dim);
    }
  }

  void load_gguf_weights(Model& m, const TensorSource& src) const override {
    load_gguf_common(m, src, "post_attention_norm");
    const auto& c = m.cfg;
    for (int i = 0; i < c.n_layers; ++i) {
      if (c.layers[static_cast<size_t>(i)] == LayerKind::kAttention) {
        load_gguf_attention(m, src, i);
        continue;
      }
      auto& g = m.w.layers[static_cast<size_t>(i)].gdn;
      const std::string p = blk(i);
      const int64_t vd = static_cast<int64_t>(c.gdn_v_heads) * c.gdn_v_dim;
      g.wqkv = load_matrix(src, p + "attn_qkv.weight", c.gdn_conv_dim(), c.hidden);
      g.wz = load_matrix(src, p + "attn_gate.weight", vd, c.hidden);
      g.wb = load_matrix(src, p + "ssm_beta.weight", c.gdn_v_heads, c.hidden);
      g.wa = load_matrix(src, p + "ssm_alpha.weight", c.gdn_v_heads, c.hidden);
      g.wout = load_matrix(src, p + "ssm_out.weight", c.hidden, vd);
      g.conv = load_f32(m, src, p + "ssm_conv1d.weight", c.gdn_conv_dim(), c.conv_kernel);
      g.a_neg = load_f32(m, src, p + "ssm_a", 1, c.gdn_v_heads);
      g.dt_bias = load_f32(m, src, p + "ssm_dt.bias", 1, c.gdn_v_heads);
      g.norm = load_f32(m, src, p + "ssm_norm.weight", 1, c.gdn_v_dim);
    }
  }

  void write_gguf(const Model& m, GGUFWriter& w, DType type) const override {
    const auto& c = m.cfg;
    const std::string p = gguf_name() + ".";
    write_gguf_common_metadata(m, w, gguf_name());
    w.set(p + "ssm.conv_kernel", GGUFValue::u32(static_cast<uint32_t>(c.conv_kernel)));
    w.set(p + "ssm.state_size", GGUFValue::u32(static_cast<uint32_t>(c.gdn_k_dim)));
    w.set(p + "ssm.group_count", GGUFValue::u32(static_cast<uint32_t>(c.gdn_k_heads)));
    w.set(p + "ssm.time_step_rank", GGUFValue::u32(static_cast<uint32_t>(c.gdn_v_heads)));
    w.set(p + "ssm.inner_size", GGUFValue::u32(static_cast<uint32_t>(c.gdn_v_heads * c.gdn_v_dim)));
    w.set(p + "rope.dimension_sections", GGUFValue::i32_array({11, 11, 10, 0}));
    int interval = 0;
    for (int i = 0; i < c.n_layers && interval == 0; ++i)
      if (c.layers[static_cast<size_t>(i)] == LayerKind::kAttention) interval = i + 1;
    bool regular = interval > 0;
    for (int i = 0; i < c.n_layers; ++i)
      regular = regular && ((i + 1) % interval == 0) ==
                               (c.layers[static_cast<size_t>(i)] == LayerKind::kAttention);
    if (regular) {
      w.set(p + "full_attention_interval", GGUFValue::u32(static_cast<uint32_t>(interval)));
    } else {
      std::vector<uint32_t> flags;
      for (auto k : c.layers) flags.push_back(k == LayerKind::kGatedDeltaNet);
      w.set(p + "attention.recurrent_layers", GGUFValue::u32_array(flags));
    }
    write_gguf_common_tensors(m, w, type, "post_attention_norm");

    // Reorder value heads to llama.cpp's tiled order unless the weights already are.
    const bool reorder = !c.gdn_tiled_heads && c.gdn_v_heads != c.gdn_k_heads;
    const int Hk = c.gdn_k_heads, Hv = c.gdn_v_heads;
    const int64_t qk = 2LL * Hk * c.gdn_k_dim;
    auto maybe = [&](std::vector<int64_t> v) { return reorder ? v : std::vector<int64_t>{}; };
    const auto qkv_rows = maybe(grouped_to_tiled_rows(Hk, Hv, c.gdn_v_dim, qk, qk));
    const auto v_rows = maybe(grouped_to_tiled_rows(Hk, Hv, c.gdn_v_dim));
    const auto head_rows = maybe(grouped_to_tiled_rows(Hk, Hv, 1));
    for (int i = 0; i < c.n_layers; ++i) {
      if (c.layers[static_cast<size_t>(i)] == LayerKind::kAttention) {
        write_gguf_attention(m, w, i, type);
        continue;
      }
      const auto& g = m.w.layers[static_cast<size_t>(i)].gdn;
      const std::string b = blk(i);
      gguf_add_matrix(w, b + "attn_qkv.weight", g.wqkv, type, qkv_rows);
      gguf_add_matrix(w, b + "attn_gate.weight", g.wz, type, v_rows);
      gguf_add_matrix(w, b + "ssm_beta.weight", g.wb, type, head_rows);
      gguf_add_matrix(w, b + "ssm_alpha.weight", g.wa, type, head_rows);
      gguf_add_matrix(w, b + "ssm_out.weight", g.wout, type, {}, v_rows);
      gguf_add_f32(w, b + "ssm_conv1d.weight", g.conv, {c.gdn_conv_dim(), c.conv_kernel}, nullptr,
                   qkv_rows);
      // [Hv] vectors: view them as Hv rows of one value to reuse the row mapping.
      gguf_add_f32(w, b + "ssm_a", Mat{g.a_neg.data, DType::F32, Hv, 1}, {Hv}, nullptr, head_rows);
      gguf_add_f32(w, b + "ssm_dt.bias", Mat{g.dt_bias.data, DType::F32, Hv, 1}, {Hv}, nullptr,
                   head_rows);
      gguf_add_f32(w, b + "ssm_norm.weight", g.norm, {c.gdn_v_dim});
    }
  }

  void add_state_regions(const Model& m, StateLayout& l, int64_t max_ctx,
                         DType kv_dtype) const override {
    add_decoder_regions(m, l, max_ctx, kv_dtype);
  }
  size_t scratch_floats(const Model& m, int max_T) const override {
    return decoder_scratch(m, max_T);
  }
  void forward(const Model& m, Backend& be, const ForwardArgs& a) const override {
    decoder_forward(m, be, a);
  }
};

}  // namespace

const Architecture& qwen3_5_architecture() {
  static const Qwen35 arch;
  return arch;
}

}  // namespace flashrt

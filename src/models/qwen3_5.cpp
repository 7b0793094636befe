// Qwen3.5 text decoder (qwen3_5_text; GGUF "qwen35"): a hybrid of Gated DeltaNet layers and gated
// full attention (every `full_attention_interval`-th layer). Zero-centered RMSNorm (1 + w) for the
// block, final and q/k norms; a plain gated RMSNorm on the GDN output; partial rotate-half RoPE.
#include <cmath>

#include "core/error.h"
#include "formats/gguf.h"
#include "formats/hf_config.h"
#include "models/blocks.h"
#include "models/decoder_config.h"

namespace flashrt {

namespace {

// llama.cpp's converter stores value heads "tiled" ([G0v0, G1v0, .., G0v1, ..]) instead of HF's
// "grouped" order ([G0v0, G0v1, .., G1v0, ..]) so that ggml can broadcast key heads by repetition.
// Returns, for each destination row (head-major, `dim` rows per head), the source row.
IndexMap grouped_to_tiled_rows(int k_heads, int v_heads, int64_t dim, int64_t offset = 0,
                               int64_t leading = 0) {
  IndexMap map;
  for (int64_t r = 0; r < leading; ++r) map.push_back(r);
  const int per_k = v_heads / k_heads;
  for (int n = 0; n < v_heads; ++n) {
    const int src_head = (n % k_heads) * per_k + n / k_heads;
    for (int64_t d = 0; d < dim; ++d) map.push_back(offset + src_head * dim + d);
  }
  return map;
}

// Export row orders of the value-head-indexed weights: llama.cpp's tiled order, unless the weights
// already are (a GGUF source) or there is nothing to reorder (Hv == Hk).
bool needs_reorder(const ModelConfig& c) {
  return !c.gdn_tiled_heads && c.gdn_v_heads != c.gdn_k_heads;
}
IndexMap qkv_rows(const ModelConfig& c) {  // q and k stay, the v part is reordered
  if (!needs_reorder(c)) return {};
  const int64_t qk = 2LL * c.gdn_k_heads * c.gdn_k_dim;
  return grouped_to_tiled_rows(c.gdn_k_heads, c.gdn_v_heads, c.gdn_v_dim, qk, qk);
}
IndexMap v_rows(const ModelConfig& c) {
  if (!needs_reorder(c)) return {};
  return grouped_to_tiled_rows(c.gdn_k_heads, c.gdn_v_heads, c.gdn_v_dim);
}
IndexMap head_rows(const ModelConfig& c) {
  if (!needs_reorder(c)) return {};
  return grouped_to_tiled_rows(c.gdn_k_heads, c.gdn_v_heads, 1);
}

// ---- weights ----
// Norms are zero-centered (HF stores w, the model applies 1 + w; GGUF stores 1 + w), except the
// Gated DeltaNet's output norm.

const WeightTable<ModelWeights> kGlobalWeights = {
    matrix(&ModelWeights::embed, "token_embd", "{m}embed_tokens.weight", Dim::kVocab, Dim::kHidden),
    norm(&ModelWeights::out_norm, "output_norm", "{m}norm.weight", Dim::kHidden)
        .hf_stores(zero_centered),
    matrix(&ModelWeights::lm_head, "output", "lm_head.weight", Dim::kVocab, Dim::kHidden).tied(),
};

const WeightTable<LayerWeights> kNormWeights = {
    norm(&LayerWeights::attn_norm, "attn_norm", "input_layernorm.weight", Dim::kHidden)
        .hf_stores(zero_centered),
    norm(&LayerWeights::ffn_norm, "ffn_norm", "post_attention_layernorm.weight", Dim::kHidden)
        .gguf_as("post_attention_norm.weight")
        .hf_stores(zero_centered),
};

// Gated attention: q_proj yields per head the query and its output gate.
const WeightTable<AttentionWeights> kAttentionWeights = {
    matrix(&AttentionWeights::wq, "attn_q", "self_attn.q_proj.weight", Dim::kQGate, Dim::kHidden),
    matrix(&AttentionWeights::wk, "attn_k", "self_attn.k_proj.weight", Dim::kKv, Dim::kHidden),
    matrix(&AttentionWeights::wv, "attn_v", "self_attn.v_proj.weight", Dim::kKv, Dim::kHidden),
    matrix(&AttentionWeights::wo, "attn_output", "self_attn.o_proj.weight", Dim::kHidden, Dim::kQ),
    norm(&AttentionWeights::q_norm, "attn_q_norm", "self_attn.q_norm.weight", Dim::kHeadDim)
        .hf_stores(zero_centered),
    norm(&AttentionWeights::k_norm, "attn_k_norm", "self_attn.k_norm.weight", Dim::kHeadDim)
        .hf_stores(zero_centered),
};

const WeightTable<GdnWeights> kGdnWeights = {
    matrix(&GdnWeights::wqkv, "attn_qkv", "linear_attn.in_proj_qkv.weight", Dim::kConvDim,
           Dim::kHidden)
        .gguf_row_order(qkv_rows),
    matrix(&GdnWeights::wz, "attn_gate", "linear_attn.in_proj_z.weight", Dim::kGdnV, Dim::kHidden)
        .gguf_row_order(v_rows),
    matrix(&GdnWeights::wb, "ssm_beta", "linear_attn.in_proj_b.weight", Dim::kGdnVHeads,
           Dim::kHidden)
        .gguf_row_order(head_rows),
    matrix(&GdnWeights::wa, "ssm_alpha", "linear_attn.in_proj_a.weight", Dim::kGdnVHeads,
           Dim::kHidden)
        .gguf_row_order(head_rows),
    matrix(&GdnWeights::wout, "ssm_out", "linear_attn.out_proj.weight", Dim::kHidden, Dim::kGdnV)
        .gguf_col_order(v_rows),
    // HF stores the conv taps as [C, 1, K], llama.cpp as [C, K].
    f32(&GdnWeights::conv, "ssm_conv1d", "linear_attn.conv1d.weight", Dim::kConvDim,
        Dim::kConvKernel)
        .gguf_row_order(qkv_rows)
        .random({RandomInit::kUniform, -0.5f, 0.5f}),
    f32(&GdnWeights::a_neg, "ssm_a", "linear_attn.A_log", Dim::kOne, Dim::kGdnVHeads)
        .gguf_as("ssm_a")
        .hf_stores(neg_exp)
        .gguf_row_order(head_rows)
        .random({RandomInit::kUniform, -16.0f, -1.0f}),  // A in U(1, 16)
    f32(&GdnWeights::dt_bias, "ssm_dt", "linear_attn.dt_bias", Dim::kOne, Dim::kGdnVHeads)
        .gguf_as("ssm_dt.bias")
        .gguf_row_order(head_rows)
        .random({RandomInit::kNormal, 1.0f, 0.0f}),
    norm(&GdnWeights::norm, "ssm_norm", "linear_attn.norm.weight", Dim::kGdnVDim),
};

// The MTP head (HF mtp.*, llama.cpp's converter: the block after the decoder's, blk.{n_layers},
// with nextn.* for these four and the usual names for its decoder layer). Its norms are
// zero-centered too.
const WeightTable<MtpWeights> kMtpWeights = {
    matrix(&MtpWeights::fc, "nextn.eh_proj", "fc.weight", Dim::kHidden, Dim::kHidden2),
    norm(&MtpWeights::enorm, "nextn.enorm", "pre_fc_norm_embedding.weight", Dim::kHidden)
        .hf_stores(zero_centered),
    norm(&MtpWeights::hnorm, "nextn.hnorm", "pre_fc_norm_hidden.weight", Dim::kHidden)
        .hf_stores(zero_centered),
    norm(&MtpWeights::out_norm, "nextn.shared_head_norm", "norm.weight", Dim::kHidden)
        .hf_stores(zero_centered),
};

class Qwen35 : public Architecture {
 public:
  std::string name() const override { return "qwen3_5"; }
  std::string gguf_name() const override { return "qwen35"; }
  std::vector<std::string> hf_model_types() const override { return {"qwen3_5_text", "qwen3_5"}; }

  ModelConfig config_from_hf(const nlohmann::json& j, const std::string& path) const override {
    HFConfig h(j, path);
    ModelConfig c = decoder_config_from_hf(h);
    c.arch = name();
    // Every Qwen3.5 checkpoint gates its attention output; the weight table and forward say so.
    if (!h.get_bool("attn_output_gate", true))
      fail("{}: attn_output_gate=false is not supported for {}", path, name());
    c.attn_output_gate = true;
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
    c.mtp_layers = static_cast<int>(h.get_int("mtp_num_hidden_layers", 0));
    if (h.get_bool("mtp_use_dedicated_embeddings", false))
      fail("{}: an MTP head with its own embeddings is not supported", path);
    return c;
  }

  ModelConfig config_from_gguf(const GGUFFile& f) const override {
    const std::string p = gguf_name() + ".";
    ModelConfig c = decoder_config_from_gguf(f, gguf_name());
    c.arch = name();
    c.attn_output_gate = true;
    c.conv_kernel = static_cast<int>(f.get_int(p + "ssm.conv_kernel"));
    c.gdn_k_dim = static_cast<int>(f.get_int(p + "ssm.state_size"));
    c.gdn_k_heads = static_cast<int>(f.get_int(p + "ssm.group_count"));
    c.gdn_v_heads = static_cast<int>(f.get_int(p + "ssm.time_step_rank"));
    FLASHRT_CHECK(c.gdn_v_heads > 0, "{}: ssm.time_step_rank must be positive", f.describe());
    c.gdn_v_dim = static_cast<int>(f.get_int(p + "ssm.inner_size") / c.gdn_v_heads);
    c.gdn_tiled_heads = true;
    // block_count counts the MTP blocks, stored after the decoder's.
    const int64_t nextn = f.get_int_opt(p + "nextn_predict_layers").value_or(0);
    FLASHRT_CHECK(nextn >= 0 && nextn < c.n_layers, "{}: {}nextn_predict_layers is {} of {} blocks",
                  f.describe(), p, nextn, c.n_layers);
    c.mtp_layers = static_cast<int>(nextn);
    c.n_layers -= c.mtp_layers;
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

  std::vector<std::pair<std::string, ModelConfig>> shapes() const override {
    ModelConfig c;
    c.arch = name();
    c.attn_output_gate = true;
    c.conv_kernel = 4;
    c.rope_theta = 1e7;
    c.tied_embeddings = true;
    ModelConfig s08 = c;  // Qwen/Qwen3.5-0.8B (text part)
    s08.vocab = 248320, s08.hidden = 1024, s08.ffn = 3584, s08.n_layers = 24, s08.n_heads = 8;
    s08.n_kv_heads = 2, s08.head_dim = 256, s08.max_positions = 262144, s08.eos_ids = {248044};
    s08.gdn_k_heads = 16, s08.gdn_v_heads = 16, s08.gdn_k_dim = 128, s08.gdn_v_dim = 128;
    ModelConfig tiny = c;
    tiny.vocab = 512, tiny.hidden = 64, tiny.ffn = 128, tiny.n_layers = 4, tiny.n_heads = 4;
    tiny.n_kv_heads = 2, tiny.head_dim = 16, tiny.max_positions = 4096;
    tiny.gdn_k_heads = 2, tiny.gdn_v_heads = 4, tiny.gdn_k_dim = 16, tiny.gdn_v_dim = 16;
    std::vector<std::pair<std::string, ModelConfig>> out = {{"0.8b", s08}, {"tiny", tiny}};
    for (auto& [n, s] : out) {
      s.rope_dim = s.head_dim / 4;
      for (int i = 0; i < s.n_layers; ++i)
        s.layers.push_back((i + 1) % 4 == 0 ? LayerKind::kAttention : LayerKind::kGatedDeltaNet);
    }
    return out;
  }

  void bind_weights(Model& m, WeightList& out) const override {
    out.add_model(kGlobalWeights, m.w);
    for (int i = 0; i < m.cfg.n_layers; ++i) {
      LayerWeights& l = m.w.layers[static_cast<size_t>(i)];
      out.add_layer(kNormWeights, l, i);
      if (m.cfg.layers[static_cast<size_t>(i)] == LayerKind::kAttention)
        out.add_layer(kAttentionWeights, l.attn, i);
      else
        out.add_layer(kGdnWeights, l.gdn, i);
      out.add_layer(kSwigluMlpWeights, l.mlp, i);
    }
    if (m.cfg.mtp_layers == 1) {
      MtpWeights& t = m.w.mtp;
      const int at = m.cfg.n_layers;
      out.add(kMtpWeights, t, "blk.{i}.", "mtp.", at);
      out.add(kNormWeights, t.layer, "blk.{i}.", "mtp.layers.0.", at);
      out.add(kAttentionWeights, t.layer.attn, "blk.{i}.", "mtp.layers.0.", at);
      out.add(kSwigluMlpWeights, t.layer.mlp, "blk.{i}.", "mtp.layers.0.", at);
    }
  }

  void add_gguf_metadata(const Model& m, GGUFWriter& w) const override {
    const auto& c = m.cfg;
    const std::string p = gguf_name() + ".";
    add_decoder_gguf_metadata(m, w, gguf_name());
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
      flags.resize(flags.size() + static_cast<size_t>(c.mtp_layers), 0);  // MTP: attention
      w.set(p + "attention.recurrent_layers", GGUFValue::u32_array(flags));
    }
    if (c.mtp_layers) {
      w.set(p + "block_count", GGUFValue::u32(static_cast<uint32_t>(c.n_layers + c.mtp_layers)));
      w.set(p + "nextn_predict_layers", GGUFValue::u32(static_cast<uint32_t>(c.mtp_layers)));
    }
  }

  // ---- state: attention layers' key and value caches, GDN layers' conv and recurrent state ----

  void add_state_regions(const Model& m, StateLayout& l, int64_t max_ctx,
                         DType kv_dtype) const override {
    const ModelConfig& c = m.cfg;
    for (int i = 0; i < c.n_layers; ++i) {
      if (c.layers[static_cast<size_t>(i)] == LayerKind::kAttention)
        add_kv_cache_regions(l, i, max_ctx, c, kv_dtype);
      else
        add_gdn_state_regions(l, i, c);
    }
  }

  // ---- MTP state: its layer's KV (layer n_layers, one row behind) and the last hidden state ----

  void add_mtp_state_regions(const Model& m, StateLayout& l, int64_t max_ctx,
                             DType kv_dtype) const override {
    const ModelConfig& c = m.cfg;
    StateLayout kv;
    add_kv_cache_regions(kv, c.n_layers, max_ctx, c, kv_dtype);
    for (RegionSpec r : kv.regions()) {
      r.lag = 1;
      l.add(std::move(r));
    }
    l.add({regions::kMtpHidden, DType::F32, {c.hidden}, RegionKind::kFixed});
  }

  // The MTP layer: x = fc([enorm(embed(t)) | hnorm(h)]), one gated-attention decoder layer over
  // the MTP positions, then (for drafts) the MTP norm.
  float* mtp_layer(const Model& m, ForwardStep& s, const float* h_in, bool out_norm) const {
    const ModelConfig& c = m.cfg;
    const MtpWeights& t = m.w.mtp;
    const int T = s.T();
    const int64_t H = c.hidden;
    const AttentionShape attn{c.n_heads, c.n_kv_heads, c.head_dim, c.rope_dim, c.rope_theta};
    float* e = embed(s, m.w.embed);
    float* cat = s.ws.take(T * 2 * H);
    s.be.rmsnorm(cat, 2 * H, e, H, t.enorm.f32(), T, static_cast<int>(H), c.rms_eps);
    s.be.rmsnorm(cat + H, 2 * H, h_in, H, t.hnorm.f32(), T, static_cast<int>(H), c.rms_eps);
    float* x = s.ws.take(T * H);
    s.be.matmul(x, cat, t.fc, T);
    gated_attention(s, x, c.n_layers, t.layer.attn_norm, t.layer.attn, attn, c.rms_eps);
    swiglu_mlp(s, x, t.layer.ffn_norm, t.layer.mlp, c.ffn, c.rms_eps);
    return out_norm ? final_norm(s, x, t.out_norm, c.rms_eps) : x;
  }

  float* mtp_forward(const Model& m, ForwardStep& s, const float* h_in) const override {
    FLASHRT_CHECK(m.cfg.mtp_layers == 1, "internal: {} has no MTP head", m.path);
    return mtp_layer(m, s, h_in, /*out_norm=*/true);
  }

  // After the main layers (h [T, hidden], final-normed): the MTP layer over the pairs the step
  // completes, each taking the hidden state of the row before its token (the slot's for a
  // sequence's first row), then each sequence's last hidden state kept for its next pair.
  void mtp_advance(const Model& m, ForwardStep& s, const float* h) const {
    const int64_t H = m.cfg.hidden;
    const size_t hidden_region = s.region(regions::kMtpHidden);
    const size_t row_bytes = static_cast<size_t>(H) * sizeof(float);
    const MtpRows& mr = *s.mtp;
    Bump ws = s.ws;
    if (mr.rows.n > 0) {
      float* h_in = ws.take(mr.rows.n * H);
      float* kept = ws.take(static_cast<int64_t>(mr.rows.seqs.size()) * H);
      s.be.load_per_seq(mr.rows, hidden_region, kept, H);
      for (size_t j = 0; j < mr.rows.seqs.size(); ++j) {
        const SeqRows& q = mr.rows.seqs[j];
        const MtpSeq& ms = mr.seqs[j];
        const int from_step = q.count - (ms.from_slot ? 1 : 0);
        float* dst = h_in + static_cast<int64_t>(q.first) * H;
        if (ms.from_slot) s.be.copy(dst, kept + static_cast<int64_t>(j) * H, row_bytes);
        if (from_step > 0)
          s.be.copy(dst + (ms.from_slot ? H : 0), h + static_cast<int64_t>(ms.main_first) * H,
                    row_bytes * static_cast<size_t>(from_step));
      }
      ForwardStep ms{s.be, mr.rows, s.layout, ws, s.gdn_mode};
      mtp_layer(m, ms, h_in, /*out_norm=*/false);
    }
    const size_t n_seqs = s.rows.seqs.size();
    float* last = ws.take(static_cast<int64_t>(n_seqs) * H);
    for (size_t i = 0; i < n_seqs; ++i) {
      const SeqRows& q = s.rows.seqs[i];
      s.be.copy(last + static_cast<int64_t>(i) * H,
                h + static_cast<int64_t>(q.first + q.count - 1) * H, row_bytes);
    }
    s.be.store_per_seq(s.rows, hidden_region, last, H);
  }

  void replay_recurrent(const Model& m, ForwardStep& s, const GdnTrace& trace) const override {
    const ModelConfig& c = m.cfg;
    const GdnShape gdn{c.gdn_k_heads, c.gdn_v_heads, c.gdn_k_dim,
                       c.gdn_v_dim,   c.conv_kernel, c.gdn_tiled_heads};
    for (int i = 0; i < c.n_layers; ++i)
      if (c.layers[static_cast<size_t>(i)] == LayerKind::kGatedDeltaNet)
        gated_delta_net_replay(s, i, m.w.layers[static_cast<size_t>(i)].gdn, gdn, trace);
  }

  // ---- forward: embed; per layer gated attention or Gated DeltaNet, then MLP; final norm ----
  // (zero-centered norms need nothing here: their +1 is in the loaded weights)

  float* forward(const Model& m, ForwardStep& s) const override {
    const ModelConfig& c = m.cfg;
    const AttentionShape attn{c.n_heads, c.n_kv_heads, c.head_dim, c.rope_dim, c.rope_theta};
    const GdnShape gdn{c.gdn_k_heads, c.gdn_v_heads, c.gdn_k_dim,
                       c.gdn_v_dim,   c.conv_kernel, c.gdn_tiled_heads};
    float* x = embed(s, m.w.embed);
    for (int i = 0; i < c.n_layers; ++i) {
      const LayerWeights& l = m.w.layers[static_cast<size_t>(i)];
      if (c.layers[static_cast<size_t>(i)] == LayerKind::kAttention)
        gated_attention(s, x, i, l.attn_norm, l.attn, attn, c.rms_eps);
      else
        gated_delta_net(s, x, i, l.attn_norm, l.gdn, gdn, c.rms_eps);
      swiglu_mlp(s, x, l.ffn_norm, l.mlp, c.ffn, c.rms_eps);
    }
    float* h = final_norm(s, x, m.w.out_norm, c.rms_eps);
    if (s.mtp) mtp_advance(m, s, h);
    return h;
  }
};

}  // namespace

const Architecture& qwen3_5_architecture() {
  static const Qwen35 arch;
  return arch;
}

}  // namespace flashrt

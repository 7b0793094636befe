// flashrt info: what a model is and what its state costs.
#include <cstdio>

#include "backends/cpu/kernels.h"
#include "cli/common.h"

namespace flashrt::cli {

void register_info(CLI::App& app) {
  auto o = std::make_shared<ModelOptions>();
  auto* cmd = app.add_subcommand("info", "Print a model's architecture, sizes and state bytes");
  add_model_options(cmd, *o, /*with_session=*/false);
  cmd->callback([o] {
    auto loaded = load(*o);
    auto& m = loaded.model;
    const auto& c = m->cfg;
    size_t per_token = 0, fixed = 0;
    m->state_bytes(&per_token, &fixed);
    std::printf("model:        %s (%s)\n", m->path.c_str(), m->format.c_str());
    std::printf("architecture: %s\n", c.arch.c_str());
    std::printf("parameters:   %.2f M (%.1f MB of weights)\n", m->param_count() / 1e6,
                m->weight_bytes() / 1e6);
    std::printf("vocab:        %lld\n", static_cast<long long>(c.vocab));
    std::printf("hidden:       %lld, ffn %lld, layers %d (%d attention, %d gated deltanet)\n",
                static_cast<long long>(c.hidden), static_cast<long long>(c.ffn), c.n_layers,
                c.n_layers_of(LayerKind::kAttention), c.n_layers_of(LayerKind::kGatedDeltaNet));
    std::printf("attention:    %d heads, %d kv heads, head dim %d, rope dims %d, theta %g%s\n",
                c.n_heads, c.n_kv_heads, c.head_dim, c.rope_dim, c.rope_theta,
                c.attn_output_gate ? ", output gate" : "");
    if (c.n_layers_of(LayerKind::kGatedDeltaNet) > 0)
      std::printf("deltanet:     %d key heads x %d, %d value heads x %d, conv %d\n", c.gdn_k_heads,
                  c.gdn_k_dim, c.gdn_v_heads, c.gdn_v_dim, c.conv_kernel);
    std::printf("embeddings:   %s\n", c.tied_embeddings ? "tied" : "untied");
    if (c.mtp_layers) {
      StateLayout mtp;
      m->arch->add_mtp_state_regions(*m, mtp, 1, DType::F32);
      size_t mtp_per_token = 0;
      for (const auto& r : mtp.regions())
        if (r.kind == RegionKind::kPositional) mtp_per_token += r.bytes_per_row();
      std::printf(
          "mtp head:     %d layer (run --spec mtp; its state adds %zu bytes per token + "
          "%lld fixed)\n",
          c.mtp_layers, mtp_per_token, static_cast<long long>(c.hidden * 4));
    }
    std::printf("context:      %lld trained\n", static_cast<long long>(c.max_positions));
    std::printf("cpu kernels:  %s\n", cpu::kernel_isa());
    std::printf("state:        %zu bytes per token + %zu bytes fixed (+ %lld bytes of logits)\n",
                per_token, fixed, static_cast<long long>(c.vocab * 4));
    if (!m->unused_tensors.empty()) {
      std::string list;
      for (size_t i = 0; i < m->unused_tensors.size() && i < 4; ++i)
        list += (i ? ", " : "") + m->unused_tensors[i];
      if (m->unused_tensors.size() > 4) list += ", ...";
      std::printf("unused:       %zu tensors of the file are not used by %s (%s)\n",
                  m->unused_tensors.size(), c.arch.c_str(), list.c_str());
    }
  });
}

}  // namespace flashrt::cli

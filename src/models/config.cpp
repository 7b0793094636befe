#include "models/config.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.h"

namespace flashrt {

std::string ModelConfig::describe() const {
  std::string kinds;
  for (auto l : layers) kinds += l == LayerKind::kAttention ? 'A' : 'G';
  return fmt::format(
             "arch={} vocab={} hidden={} ffn={} layers={} [{}] heads={} kv_heads={} head_dim={} "
             "eps={} "
             "rope_theta={} rope_dim={} tied={} out_gate={} conv={} gdn_k={}x{} gdn_v={}x{} "
             "tiled={}",
             arch, vocab, hidden, ffn, n_layers, kinds, n_heads, n_kv_heads, head_dim, rms_eps,
             rope_theta, rope_dim, tied_embeddings, attn_output_gate, conv_kernel, gdn_k_heads,
             gdn_k_dim, gdn_v_heads, gdn_v_dim, gdn_tiled_heads) +
         (mtp_layers ? fmt::format(" mtp={}", mtp_layers) : std::string());
}

void ModelConfig::validate(const std::string& where) const {
  const ModelConfig& c = *this;
  FLASHRT_CHECK(c.vocab > 0 && c.hidden > 0 && c.ffn > 0 && c.n_layers > 0,
                "{}: vocab, hidden, ffn and layer counts must be positive", where);
  FLASHRT_CHECK(c.n_heads > 0 && c.n_kv_heads > 0 && c.head_dim > 0,
                "{}: head counts and head_dim must be positive", where);
  FLASHRT_CHECK(c.n_heads % c.n_kv_heads == 0,
                "{}: {} attention heads are not a multiple of {} KV heads", where, c.n_heads,
                c.n_kv_heads);
  FLASHRT_CHECK(c.rope_dim > 0 && c.rope_dim <= c.head_dim && c.rope_dim % 2 == 0,
                "{}: rotary dims {} must be even and at most head_dim {}", where, c.rope_dim,
                c.head_dim);
  FLASHRT_CHECK(static_cast<int>(c.layers.size()) == c.n_layers, "{}: {} layer kinds for {} layers",
                where, c.layers.size(), c.n_layers);
  if (c.n_layers_of(LayerKind::kGatedDeltaNet) > 0) {
    FLASHRT_CHECK(c.conv_kernel >= 2 && c.gdn_k_heads > 0 && c.gdn_v_heads > 0 && c.gdn_k_dim > 0 &&
                      c.gdn_v_dim > 0,
                  "{}: Gated DeltaNet sizes must be positive", where);
    FLASHRT_CHECK(c.gdn_v_heads % c.gdn_k_heads == 0,
                  "{}: {} value heads are not a multiple of {} key heads", where, c.gdn_v_heads,
                  c.gdn_k_heads);
  }
  FLASHRT_CHECK(c.mtp_layers == 0 || c.mtp_layers == 1,
                "{}: {} MTP layers (flashrt runs one MTP layer, as Qwen3.5 checkpoints have)",
                where, c.mtp_layers);
  FLASHRT_CHECK(c.hidden < (1 << 20) && c.ffn < (1 << 22) && c.vocab < (1 << 24) &&
                    c.n_layers < 1024 && c.head_dim <= 1024 && c.n_heads <= 1024,
                "{}: implausible model sizes", where);
}

}  // namespace flashrt

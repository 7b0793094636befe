#include "models/random_model.h"

#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/half.h"
#include "core/thread_pool.h"

namespace flashrt {

namespace {

struct Rng {  // splitmix64: fast, and seeded per row so generation is parallel and deterministic
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  float uniform() { return static_cast<float>(next() >> 40) * (1.0f / 16777216.0f); }
  // Irwin-Hall(4) scaled to unit variance: close enough to normal for weights.
  float normal() { return (uniform() + uniform() + uniform() + uniform() - 2.0f) * 1.7320508f; }
};

uint64_t mix(uint64_t a, uint64_t b) {
  return Rng{a * 0x100000001b3ull ^ b}.next();
}

class Maker {
 public:
  Maker(Model& m, uint64_t seed) : m_(m), seed_(seed) {}

  Mat matrix(int64_t rows, int64_t cols, float std) {
    auto& buf = m_.owned.emplace_back(static_cast<size_t>(rows * cols) * 2);
    auto* out = reinterpret_cast<uint16_t*>(buf.data());
    const uint64_t id = ++counter_;
    ThreadPool::global().parallel_for(rows, 64, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        Rng g{mix(mix(seed_, id), static_cast<uint64_t>(r))};
        for (int64_t c = 0; c < cols; ++c) out[r * cols + c] = f32_to_bf16(g.normal() * std);
      }
    });
    return Mat{buf.data(), DType::BF16, rows, cols};
  }
  Mat vec(int64_t n, float mean, float std) {
    Rng g{mix(seed_, ++counter_)};
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& x : v) x = mean + std * g.normal();
    return m_.own_f32(std::move(v), 1, n);
  }
  Mat uniform_vec(int64_t rows, int64_t cols, float lo, float hi) {
    Rng g{mix(seed_, ++counter_)};
    std::vector<float> v(static_cast<size_t>(rows * cols));
    for (auto& x : v) x = lo + (hi - lo) * g.uniform();
    return m_.own_f32(std::move(v), rows, cols);
  }

 private:
  Model& m_;
  uint64_t seed_;
  uint64_t counter_ = 0;
};

ModelConfig qwen3_base() {
  ModelConfig c;
  c.arch = "qwen3";
  c.rms_eps = 1e-6f;
  c.rope_theta = 1e6;
  c.tied_embeddings = true;
  c.bos_id = -1;
  return c;
}

}  // namespace

std::vector<std::string> model_shape_names(const std::string& arch) {
  if (arch == "qwen3") return {"0.6b", "tiny"};
  if (arch == "qwen3_5") return {"0.8b", "tiny"};
  return {};
}

ModelConfig model_shape(const std::string& arch, const std::string& shape) {
  ModelConfig c = qwen3_base();
  if (arch == "qwen3") {
    if (shape == "0.6b") {  // Qwen/Qwen3-0.6B
      c.vocab = 151936, c.hidden = 1024, c.ffn = 3072, c.n_layers = 28, c.n_heads = 16,
      c.n_kv_heads = 8, c.head_dim = 128;
      c.max_positions = 40960;
      c.eos_ids = {151645};
    } else if (shape == "tiny") {
      c.vocab = 512, c.hidden = 64, c.ffn = 128, c.n_layers = 2, c.n_heads = 4, c.n_kv_heads = 2,
      c.head_dim = 16;
      c.max_positions = 4096;
    } else {
      fail("unknown qwen3 shape '{}' (known: 0.6b, tiny)", shape);
    }
    c.rope_dim = c.head_dim;
    c.layers.assign(static_cast<size_t>(c.n_layers), LayerKind::kAttention);
  } else if (arch == "qwen3_5") {
    c.arch = "qwen3_5";
    c.attn_output_gate = true;
    c.conv_kernel = 4;
    if (shape == "0.8b") {  // Qwen/Qwen3.5-0.8B (text part)
      c.vocab = 248320, c.hidden = 1024, c.ffn = 3584, c.n_layers = 24, c.n_heads = 8,
      c.n_kv_heads = 2, c.head_dim = 256;
      c.gdn_k_heads = 16, c.gdn_v_heads = 16, c.gdn_k_dim = 128, c.gdn_v_dim = 128;
      c.rope_theta = 1e7;
      c.max_positions = 262144;
      c.eos_ids = {248044};
    } else if (shape == "tiny") {
      c.vocab = 512, c.hidden = 64, c.ffn = 128, c.n_layers = 4, c.n_heads = 4, c.n_kv_heads = 2,
      c.head_dim = 16;
      c.gdn_k_heads = 2, c.gdn_v_heads = 4, c.gdn_k_dim = 16, c.gdn_v_dim = 16;
      c.rope_theta = 1e7;
      c.max_positions = 4096;
    } else {
      fail("unknown qwen3_5 shape '{}' (known: 0.8b, tiny)", shape);
    }
    c.rope_dim = c.head_dim / 4;
    for (int i = 0; i < c.n_layers; ++i)
      c.layers.push_back((i + 1) % 4 == 0 ? LayerKind::kAttention : LayerKind::kGatedDeltaNet);
  } else {
    fail("unknown architecture '{}' (qwen3 or qwen3_5)", arch);
  }
  c.validate(arch + " " + shape);
  return c;
}

std::unique_ptr<Model> make_random_model(const ModelConfig& c, uint64_t seed) {
  auto m = std::make_unique<Model>();
  m->cfg = c;
  m->arch = c.arch == "qwen3" ? find_architecture_by_gguf_name("qwen3")
                              : find_architecture_by_gguf_name("qwen35");
  FLASHRT_CHECK(m->arch, "no architecture '{}'", c.arch);
  m->format = "random";
  m->path = c.arch + "-random";
  Maker mk(*m, seed);
  constexpr float kStd = 0.02f;
  auto& w = m->w;
  w.embed = mk.matrix(c.vocab, c.hidden, kStd);
  w.out_norm = mk.vec(c.hidden, 1.0f, 0.02f);
  w.lm_head = c.tied_embeddings ? w.embed : mk.matrix(c.vocab, c.hidden, kStd);
  w.layers.resize(static_cast<size_t>(c.n_layers));
  for (int i = 0; i < c.n_layers; ++i) {
    auto& l = w.layers[static_cast<size_t>(i)];
    l.kind = c.layers[static_cast<size_t>(i)];
    l.attn_norm = mk.vec(c.hidden, 1.0f, 0.02f);
    l.ffn_norm = mk.vec(c.hidden, 1.0f, 0.02f);
    if (l.kind == LayerKind::kAttention) {
      const int64_t q = static_cast<int64_t>(c.n_heads) * c.head_dim,
                    kv = static_cast<int64_t>(c.n_kv_heads) * c.head_dim;
      l.attn.wq = mk.matrix(q * (c.attn_output_gate ? 2 : 1), c.hidden, kStd);
      l.attn.wk = mk.matrix(kv, c.hidden, kStd);
      l.attn.wv = mk.matrix(kv, c.hidden, kStd);
      l.attn.wo = mk.matrix(c.hidden, q, kStd);
      l.attn.q_norm = mk.vec(c.head_dim, 1.0f, 0.02f);
      l.attn.k_norm = mk.vec(c.head_dim, 1.0f, 0.02f);
    } else {
      const int64_t vd = static_cast<int64_t>(c.gdn_v_heads) * c.gdn_v_dim;
      l.gdn.wqkv = mk.matrix(c.gdn_conv_dim(), c.hidden, kStd);
      l.gdn.wz = mk.matrix(vd, c.hidden, kStd);
      l.gdn.wb = mk.matrix(c.gdn_v_heads, c.hidden, kStd);
      l.gdn.wa = mk.matrix(c.gdn_v_heads, c.hidden, kStd);
      l.gdn.wout = mk.matrix(c.hidden, vd, kStd);
      l.gdn.conv = mk.uniform_vec(c.gdn_conv_dim(), c.conv_kernel, -0.5f, 0.5f);
      l.gdn.a_neg = mk.uniform_vec(1, c.gdn_v_heads, -16.0f, -1.0f);  // -exp(A_log), A in U(1, 16)
      l.gdn.dt_bias = mk.vec(c.gdn_v_heads, 1.0f, 0.0f);
      l.gdn.norm = mk.vec(c.gdn_v_dim, 1.0f, 0.02f);
    }
    l.mlp.gate = mk.matrix(c.ffn, c.hidden, kStd);
    l.mlp.up = mk.matrix(c.ffn, c.hidden, kStd);
    l.mlp.down = mk.matrix(c.hidden, c.ffn, kStd);
  }
  return m;
}

}  // namespace flashrt

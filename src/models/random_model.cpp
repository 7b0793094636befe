#include "models/random_model.h"

#include <fmt/ranges.h>
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
  Mat vec(int64_t rows, int64_t cols, float mean, float std) {
    Rng g{mix(seed_, ++counter_)};
    std::vector<float> v(static_cast<size_t>(rows * cols));
    for (auto& x : v) x = mean + std * g.normal();
    return m_.own_f32(std::move(v), rows, cols);
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

}  // namespace

std::vector<std::string> model_shape_names(const std::string& arch) {
  std::vector<std::string> names;
  if (const Architecture* a = find_architecture(arch))
    for (const auto& [name, c] : a->shapes()) names.push_back(name);
  return names;
}

ModelConfig model_shape(const std::string& arch, const std::string& shape) {
  const Architecture* a = find_architecture(arch);
  if (!a) {
    std::vector<std::string> known;
    for (const Architecture* x : all_architectures()) known.push_back(x->name());
    fail("unknown architecture '{}' (known: {})", arch, fmt::join(known, ", "));
  }
  for (const auto& [name, c] : a->shapes())
    if (name == shape) {
      c.validate(arch + " " + shape);
      return c;
    }
  fail("unknown {} shape '{}' (known: {})", arch, shape, fmt::join(model_shape_names(arch), ", "));
}

std::unique_ptr<Model> make_random_model(const ModelConfig& c, uint64_t seed) {
  auto m = std::make_unique<Model>();
  m->cfg = c;
  m->arch = find_architecture(c.arch);
  FLASHRT_CHECK(m->arch, "no architecture '{}'", c.arch);
  m->format = "random";
  m->path = c.arch + "-random";
  m->w.layers.resize(static_cast<size_t>(c.n_layers));
  Maker mk(*m, seed);
  for (BoundWeight& b : m->weights()) {
    const RandomInit& r = b.init;
    if (b.tied)
      *b.mat = *b.tied;
    else if (b.storage == Storage::kMatrix)
      *b.mat = mk.matrix(b.rows, b.cols, r.b);
    else if (r.kind == RandomInit::kUniform)
      *b.mat = mk.uniform_vec(b.rows, b.cols, r.a, r.b);
    else
      *b.mat = mk.vec(b.rows, b.cols, r.a, r.b);
  }
  return m;
}

}  // namespace flashrt

// The trained pycoder models: logits and 48-token greedy continuations of three prompts against
// transformers, from the HF folder and from GGUF files flashrt converted (bf16 and q8_0).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "engine/session.h"
#include "model_fixtures.h"

namespace flashrt::testing {
namespace {

struct Case {
  std::string model, format;
  GdnMode mode;
  DType kv = DType::F32;  // KV cache type
};

// How ctest and failure messages show a case (instead of its bytes).
void PrintTo(const Case& c, std::ostream* os) {
  *os << c.model << " " << c.format << (c.mode == GdnMode::kChunked ? " chunked" : "")
      << (c.kv == DType::F16 ? " kv f16" : "");
}

class TrainedModel : public ::testing::TestWithParam<Case> {};

TEST_P(TrainedModel, PromptsMatchTransformers) {
  const Case& c = GetParam();
  const std::string dir = trained_model_dir(c.model);
  const Reference ref(dir);
  const auto model = load_model(model_path(dir, c.format));
  const auto be = make_cpu_backend();
  // Relative to the logit scale (~10 here): f32 compute ~1e-6; q8_0 weights measured ~1.5%.
  // An f16 KV cache (keys and values rounded to 11 significant bits) ~1e-3.
  const float tol = c.format == "q8_0" ? 0.03f : c.kv == DType::F16 ? 2e-3f : 2e-4f;
  // The reference continuations run 48 tokens without stopping: transformers' generate suppressed
  // the end-of-text token 0 (at p0 step 19 of the dense model it is the top logit by 1.3).
  SamplerParams greedy_no_eos = SamplerParams::greedy();
  greedy_no_eos.logit_bias = {{0, -INFINITY}};
  for (int i = 0; i < 3; ++i) {
    const std::string p = "p" + std::to_string(i) + ".";
    SCOPED_TRACE(p);
    const auto ids = ref.ids(p + "input_ids");
    const auto want = ref.floats(p + "logits");
    const auto greedy = ref.ids(p + "greedy");
    SessionOptions so;
    so.max_ctx = 128;
    so.gdn_mode = c.mode;
    so.kv_dtype = c.kv;
    Session s(*model, *be, so);
    const auto got = s.forward_all_logits(ids);
    ASSERT_EQ(got.size(), want.size());
    const float scale = std::max(1.0f, max_abs(want.data(), want.size()));
    EXPECT_LE(max_abs_diff(got.data(), want.data(), want.size()), tol * scale);
    const auto r = s.generate(static_cast<int>(greedy.size()), greedy_no_eos, {});
    if (c.format != "q8_0") {
      EXPECT_EQ(r.tokens, greedy);
      continue;
    }
    // q8_0 may flip a genuine near-tie: accept a divergence only where the f32 path (checked
    // against the reference above to 2e-4) shows a top-2 gap within the q8_0 logit tolerance.
    const auto first =
        std::mismatch(r.tokens.begin(), r.tokens.end(), greedy.begin()).first - r.tokens.begin();
    if (first == static_cast<std::ptrdiff_t>(greedy.size())) continue;
    const auto f32_model = load_model(dir);
    Session ref_s(*f32_model, *be, so);
    std::vector<int32_t> prefix = ids;
    prefix.insert(prefix.end(), greedy.begin(), greedy.begin() + first);
    ref_s.append(prefix);
    auto l = ref_s.logits();
    l[0] = -INFINITY;
    std::partial_sort(l.begin(), l.begin() + 2, l.end(), std::greater<float>());
    EXPECT_LT(l[0] - l[1], tol * scale)
        << "q8_0 diverges at step " << first << " where the top-2 gap is " << l[0] - l[1]
        << ", not a near-tie";
  }
}

std::string name(const ::testing::TestParamInfo<Case>& info) {
  std::string n = info.param.model + "_" + info.param.format +
                  (info.param.mode == GdnMode::kChunked ? "_chunked" : "") +
                  (info.param.kv == DType::F16 ? "_kv_f16" : "");
  for (char& ch : n)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return n;
}

INSTANTIATE_TEST_SUITE_P(
    Models, TrainedModel,
    ::testing::Values(Case{"pycoder-hybrid-12m", "hf", GdnMode::kRecurrent},
                      Case{"pycoder-hybrid-12m", "hf", GdnMode::kChunked},
                      Case{"pycoder-hybrid-12m", "bf16", GdnMode::kAuto},
                      Case{"pycoder-hybrid-12m", "q8_0", GdnMode::kAuto},
                      Case{"pycoder-dense-7m", "hf", GdnMode::kAuto},
                      Case{"pycoder-dense-7m", "bf16", GdnMode::kAuto},
                      Case{"pycoder-dense-7m", "q8_0", GdnMode::kAuto},
                      Case{"pycoder-hybrid-12m", "hf", GdnMode::kAuto, DType::F16},
                      Case{"pycoder-dense-7m", "hf", GdnMode::kAuto, DType::F16}),
    name);

}  // namespace
}  // namespace flashrt::testing

// Perplexity on a held-out Python file (tests/data/heldout.py, written for these tests): the
// trained models predict it far better than chance, and quantizing their weights to q8_0 changes
// the perplexity by less than 1% (q4_0 is reported, with a looser bound).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "engine/perplexity.h"
#include "models/model_fixtures.h"
#include "tokenizer/gguf_vocab.h"

namespace flashrt::testing {
namespace {

std::vector<int32_t> heldout_ids(const std::string& model_dir) {
  std::ifstream in(source_dir() + "/tests/data/heldout.py");
  std::stringstream ss;
  ss << in.rdbuf();
  return load_tokenizer(model_dir).encode(ss.str(), false);
}

TEST(EnginePerplexity, QuantizationChangesItLittle) {
  const auto be = make_cpu_backend();
  for (const char* name : {"pycoder-hybrid-12m", "pycoder-dense-7m"}) {
    const std::string dir = trained_model_dir(name);
    const auto ids = heldout_ids(dir);
    ASSERT_GT(ids.size(), 1000u);
    const double base = perplexity(*load_model(dir), *be, ids, 512).perplexity;
    EXPECT_GT(base, 2.0) << name;
    EXPECT_LT(base, 20.0) << name
                          << ": a model trained on Python should predict Python well (vocab 8192)";
    const double q8 = perplexity(*load_model(model_path(dir, "q8_0")), *be, ids, 512).perplexity;
    const double q4 = perplexity(*load_model(model_path(dir, "q4_0")), *be, ids, 512).perplexity;
    std::printf("%s: perplexity bf16 %.4f, q8_0 %.4f (%+.2f%%), q4_0 %.4f (%+.2f%%)\n", name, base,
                q8, 100 * (q8 / base - 1), q4, 100 * (q4 / base - 1));
    EXPECT_LT(std::fabs(q8 / base - 1), 0.01) << name;
    EXPECT_LT(std::fabs(q4 / base - 1), 0.10) << name;
  }
}

TEST(EnginePerplexity, MatchesTheLogitsByHand) {
  const auto be = make_cpu_backend();
  const auto m = load_model(ref_model_dir("qwen3"));
  const auto ids = Reference(ref_model_dir("qwen3")).ids("T96.input_ids");
  const auto want = Reference(ref_model_dir("qwen3")).floats("T96.logits");
  // Two windows of 48: the reference logits cover one window of 96, so check the first window.
  const std::vector<int32_t> first(ids.begin(), ids.begin() + 48);
  const auto r = perplexity(*m, *be, first, 48);
  double nll = 0;
  const int V = static_cast<int>(m->cfg.vocab);
  for (int t = 0; t + 1 < 48; ++t) {
    const float* l = want.data() + static_cast<size_t>(t) * V;
    double z = 0;
    for (int v = 0; v < V; ++v) z += std::exp(static_cast<double>(l[v]));
    nll += std::log(z) - l[ids[static_cast<size_t>(t) + 1]];
  }
  EXPECT_EQ(r.tokens_scored, 47);
  EXPECT_NEAR(r.mean_nll, nll / 47, 1e-4);
}

}  // namespace
}  // namespace flashrt::testing

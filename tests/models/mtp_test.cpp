// The MTP head (Qwen3.5's mtp.*): its logits against the module that trained it, from the HF
// folder and from the GGUF flashrt converts; running it along leaves the main model's bits alone;
// its state is in the slot (capsules carry it, KV one row behind the position).
#include <gtest/gtest.h>

#include <algorithm>

#include "capsule/capsule_fixture.h"
#include "engine/session.h"
#include "model_fixtures.h"
#include "models/random_model.h"

namespace flashrt::testing {
namespace {

const std::string kMtpModel = "pycoder-hybrid-12m-mtp";

SessionOptions with_mtp(bool mtp, int64_t ctx = 128) {
  SessionOptions so;
  so.max_ctx = ctx;
  so.mtp = mtp;
  return so;
}

// The MTP logits of the pair (hidden state at the last fed token, `next`): one step of the head
// on the slot's kept hidden state.
std::vector<float> mtp_logits(Session& s, int32_t next) {
  Backend& be = s.backend();
  const int64_t H = s.model().cfg.hidden, V = s.model().cfg.vocab;
  auto buf = be.alloc(static_cast<size_t>(2 * H + V) * sizeof(float));
  float* h = reinterpret_cast<float*>(buf.get());
  be.copy(h, s.arena().region(regions::kMtpHidden), static_cast<size_t>(H) * sizeof(float));
  s.mtp_step({&next, 1}, s.pos() - 1, h, h + 2 * H, h + H);
  std::vector<float> out(static_cast<size_t>(V));
  be.to_host(out.data(), h + 2 * H, out.size() * sizeof(float));
  return out;
}

class MtpHead : public ::testing::TestWithParam<std::string> {};

// Row i of the reference predicts token i + 2 from the true token i + 1 and the hidden state at i,
// attending over MTP rows 0..i: feed the prompt one token at a time and ask the head each time.
TEST_P(MtpHead, LogitsMatchTheTrainingModule) {
  const std::string dir = trained_model_dir(kMtpModel);
  const Reference ref(dir, "reference_mtp.safetensors");
  const auto model = load_model(model_path(dir, GetParam()));
  ASSERT_EQ(model->cfg.mtp_layers, 1);
  const auto be = make_cpu_backend();
  for (int p = 0; p < 3; ++p) {
    const std::string n = "p" + std::to_string(p) + ".";
    SCOPED_TRACE(n);
    const auto ids = ref.ids(n + "input_ids");
    std::vector<int64_t> shape;
    const auto want = ref.floats(n + "mtp_logits", &shape);
    const int64_t V = model->cfg.vocab;
    ASSERT_EQ(shape, (std::vector<int64_t>{static_cast<int64_t>(ids.size()) - 1, V}));
    const float scale = std::max(1.0f, max_abs(want.data(), want.size()));
    Session s(*model, *be, with_mtp(true));
    for (size_t i = 0; i + 1 < ids.size(); ++i) {
      s.append({&ids[i], 1});
      const auto got = mtp_logits(s, ids[i + 1]);
      // float32 on both sides; the GGUF's norms hold 1 + w rounded to f32 once.
      EXPECT_LE(max_abs_diff(got.data(), want.data() + i * static_cast<size_t>(V),
                             static_cast<size_t>(V)),
                2e-4f * scale)
          << "row " << i;
    }
    // After the whole prompt: the base model's greedy token, then the head's draft after it.
    s.append({&ids.back(), 1});
    const int32_t next = s.sample(SamplerParams::greedy());
    EXPECT_EQ(next, ref.ids(n + "base_next")[0]);
    const auto l = mtp_logits(s, next);
    EXPECT_EQ(std::max_element(l.begin(), l.end()) - l.begin(), ref.ids(n + "mtp_draft")[0]);
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, MtpHead, ::testing::Values("hf", "bf16"));

// Running the head along changes no bit of the main model's logits, prefill or decode.
TEST(MtpState, HeadLeavesTheMainModelAlone) {
  const auto model = load_model(trained_model_dir(kMtpModel));
  const auto be = make_cpu_backend();
  const Reference ref(trained_model_dir(kMtpModel), "reference_mtp.safetensors");
  const auto ids = ref.ids("p2.input_ids");
  Session plain(*model, *be, with_mtp(false)), mtp(*model, *be, with_mtp(true));
  EXPECT_EQ(plain.forward_all_logits(ids), mtp.forward_all_logits(ids));
  const auto a = plain.generate(24, SamplerParams::greedy(), {});
  const auto b = mtp.generate(24, SamplerParams::greedy(), {});
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(plain.logits(), mtp.logits());
}

// The MTP state is one row behind: after n tokens n - 1 KV rows are live; a capsule holds them
// and the kept hidden state, restores byte for byte, and the head then drafts the same logits.
TEST(MtpState, CapsuleCarriesTheHeadState) {
  const auto model = load_model(trained_model_dir(kMtpModel));
  const auto be = make_cpu_backend();
  const Reference ref(trained_model_dir(kMtpModel), "reference_mtp.safetensors");
  const auto ids = ref.ids("p2.input_ids");
  Session a(*model, *be, with_mtp(true));
  a.append(ids);
  const int kv = a.arena().layout().find("attn.8.k");
  ASSERT_GE(kv, 0);
  const RegionSpec& r = a.arena().layout().regions()[static_cast<size_t>(kv)];
  EXPECT_EQ(r.lag, 1);
  EXPECT_EQ(r.live_rows(a.pos()), a.pos() - 1);
  const Capsule c = a.snapshot();
  Session b(*model, *be, with_mtp(true));
  b.restore(c);
  EXPECT_EQ(live_state(a), live_state(b));
  EXPECT_EQ(mtp_logits(a, 17), mtp_logits(b, 17));
  // A slot without the head's state is another layout: refused, with the session unchanged.
  Session plain(*model, *be, with_mtp(false));
  EXPECT_THROW(plain.restore(c), Error);
  EXPECT_EQ(plain.pos(), 0);
}

TEST(MtpState, RandomModelsGetAHead) {
  ModelConfig c = model_shape("qwen3_5", "tiny");
  c.mtp_layers = 1;
  const auto m = make_random_model(c, 7);
  GGUFWriter w;
  write_gguf(*m, w, DType::BF16);
  const std::string path = temp_dir() + "/tiny-mtp.gguf";
  w.write(path);
  const auto g = load_model(path);
  EXPECT_EQ(g->cfg.mtp_layers, 1);
  EXPECT_EQ(g->cfg.n_layers, c.n_layers);
  EXPECT_TRUE(g->unused_tensors.empty());
  EXPECT_EQ(g->param_count(), m->param_count());
  // A model without a head refuses a session that asks for one.
  const auto plain = make_random_model(model_shape("qwen3_5", "tiny"), 7);
  const auto be = make_cpu_backend();
  EXPECT_THROW(Session(*plain, *be, with_mtp(true)), Error);
}

}  // namespace
}  // namespace flashrt::testing

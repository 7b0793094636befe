// Files written by flashrt before the restructure of issue 11 (tests/data/legacy, see its README)
// must keep loading and give the same results: GGUF files converted by the old code and capsule
// files saved by it. The model numbers are checked against the transformers references; "the same
// as today's code" is checked bit for bit against today's own conversion / prefill of the same
// input, never against stored numbers.
#include <gtest/gtest.h>

#include "capsule/capsule_file.h"
#include "capsule/capsule_fixture.h"
#include "formats/gguf.h"
#include "models/model_fixtures.h"

namespace flashrt::testing {
namespace {

std::string legacy(const std::string& name) {
  return std::string(FLASHRT_SOURCE_DIR) + "/tests/data/legacy/" + name;
}

std::string default_gguf() {
  return std::string(FLASHRT_SOURCE_DIR) + "/models/pycoder-hybrid-12m.gguf";
}

// Every position's logits of one forward pass over `ids` from an empty session.
std::vector<float> all_logits(const Model& m, Backend& be, const std::vector<int32_t>& ids) {
  Session s(m, be);
  return s.forward_all_logits(ids);
}

// The legacy GGUF files: a dense model in q8_0 and the hybrid in bf16 (value heads in llama.cpp's
// tiled order, ssm_a, folded norms), with the tolerances of reference_test.cpp for their type.
struct LegacyGguf {
  std::string model, type;
  float tolerance;  // of max |logit - reference| over the logit scale
  std::string file() const { return legacy(model + "-" + type + ".gguf"); }
};
const LegacyGguf kLegacyGgufs[] = {{"qwen3", "q8_0", 0.08f}, {"qwen35", "bf16", 2e-4f}};

TEST(LegacyFiles, OldGgufConversionsLoadAndMatchTheReferenceAndTodaysConversion) {
  auto be = make_cpu_backend();
  for (const LegacyGguf& g : kLegacyGgufs) {
    SCOPED_TRACE(g.file());
    const std::string dir = ref_model_dir(g.model);
    const auto old_model = load_model(g.file());
    const auto new_model = load_model(converted_gguf(dir, g.type));
    const Reference ref(dir);
    const auto ids = ref.ids("T96.input_ids");
    const auto want = ref.floats("T96.logits");
    const auto got = all_logits(*old_model, *be, ids);
    ASSERT_EQ(got.size(), want.size());
    const float scale = std::max(1.0f, max_abs(want.data(), want.size()));
    EXPECT_LE(max_abs_diff(got.data(), want.data(), got.size()), g.tolerance * scale);
    EXPECT_EQ(got, all_logits(*new_model, *be, ids)) << "not bit-identical to today's conversion";
  }
}

TEST(LegacyFiles, TodaysConversionWritesTheSameTensorsAndMetadataAsTheOldOne) {
  for (const LegacyGguf& g : kLegacyGgufs) {
    SCOPED_TRACE(g.file());
    const auto old_file = GGUFFile::open(g.file());
    const auto new_file = GGUFFile::open(converted_gguf(ref_model_dir(g.model), g.type));
    ASSERT_EQ(old_file->metadata().size(), new_file->metadata().size());
    for (const auto& [key, value] : old_file->metadata()) {
      const GGUFValue* v = new_file->get_meta(key);
      ASSERT_NE(v, nullptr) << key;
      EXPECT_EQ(v->to_display(1u << 20), value.to_display(1u << 20)) << key;
    }
    ASSERT_EQ(old_file->tensors().size(), new_file->tensors().size());
    for (const TensorInfo& t : old_file->tensors()) {
      const TensorInfo* n = new_file->find(t.name);
      ASSERT_NE(n, nullptr) << t.name;
      EXPECT_EQ(n->dtype, t.dtype) << t.name;
      EXPECT_EQ(n->shape, t.shape) << t.name;
      ASSERT_EQ(n->bytes, t.bytes) << t.name;
      EXPECT_EQ(std::memcmp(n->data, t.data, t.bytes), 0) << t.name;
    }
  }
}

TEST(LegacyFiles, OldCapsuleRestoresToTheSameBytesAndTheReferenceContinuation) {
  auto be = make_cpu_backend();
  const auto model = load_model(default_gguf());  // itself a GGUF the old code converted
  const Reference ref(trained_model_dir("pycoder-hybrid-12m"));
  const auto prompt = ref.ids("p2.input_ids");

  Session restored(*model, *be);
  restored.restore(read_capsule_file(legacy("pycoder-hybrid-12m-p2.cap")));
  Session fresh(*model, *be);
  fresh.append(prompt);
  ASSERT_EQ(restored.pos(), static_cast<int64_t>(prompt.size()));
  EXPECT_EQ(restored.tokens(), prompt);
  EXPECT_EQ(live_state(restored), live_state(fresh))
      << "the old capsule's bytes differ from a prefill today";

  const auto greedy = ref.ids("p2.greedy");
  const auto r = restored.generate(static_cast<int>(greedy.size()), SamplerParams::greedy(), {});
  EXPECT_EQ(r.tokens, greedy);
}

TEST(LegacyFiles, OldMidGenerationCapsuleContinuesLikeAnUninterruptedRun) {
  // Saved after a prefill of p0 and 5 tokens sampled with seed 7 (f16 KV cache, 256 tokens of
  // context, zstd payload): the last sampled token is pending and the RNG has advanced.
  auto be = make_cpu_backend();
  const auto model = load_model(default_gguf());
  const Reference ref(trained_model_dir("pycoder-hybrid-12m"));
  SessionOptions o;
  o.kv_dtype = DType::F16;
  o.max_ctx = 256;
  const SamplerParams p = sampled();

  Session fresh(*model, *be, o);
  fresh.append(ref.ids("p0.input_ids"));
  fresh.seed(7);
  for (int i = 0; i < 5; ++i) fresh.next_token(p);

  Session restored(*model, *be, o);
  restored.restore(read_capsule_file(legacy("pycoder-hybrid-12m-p0-sampled-f16.cap")));
  ASSERT_GE(restored.pending(), 0);
  EXPECT_EQ(restored.tokens(), fresh.tokens());
  EXPECT_EQ(live_state(restored), live_state(fresh));
  EXPECT_EQ(restored.generate(24, p, {}).tokens, fresh.generate(24, p, {}).tokens);
}

}  // namespace
}  // namespace flashrt::testing

// Which token boundaries are exact. With the recurrent Gated DeltaNet (the CPU default) every
// boundary is bit-exact: a capsule taken after any prefix, restored and continued, gives the same
// bits as one prefill of the whole prompt. With the chunked form, boundaries at multiples of 64
// are bit-exact and others agree within 1e-4 of the logit scale with identical greedy tokens.
#include <cmath>

#include "capsule/capsule_file.h"
#include "capsule_fixture.h"

namespace flashrt::testing {
namespace {

struct Result {
  std::vector<float> logits;
  std::vector<int32_t> tokens;
};

Result split_run(const Model& m, Backend& be, GdnMode mode, const std::vector<int32_t>& prompt,
                 size_t cut, const std::string& file) {
  SessionOptions o;
  o.max_ctx = 512;
  o.gdn_mode = mode;
  Result r;
  if (cut == 0 || cut >= prompt.size()) {
    Session s(m, be, o);
    s.append(prompt);
    r.logits = s.logits();
    r.tokens = s.generate(24, SamplerParams::greedy(), {}).tokens;
    return r;
  }
  Session a(m, be, o);
  a.append(std::vector<int32_t>(prompt.begin(), prompt.begin() + static_cast<std::ptrdiff_t>(cut)));
  a.snapshot(Tier::kDisk, file);  // through a file, into another session
  Session b(m, be, o);
  b.restore(read_capsule_file(file));
  b.append(std::vector<int32_t>(prompt.begin() + static_cast<std::ptrdiff_t>(cut), prompt.end()));
  r.logits = b.logits();
  r.tokens = b.generate(24, SamplerParams::greedy(), {}).tokens;
  return r;
}

TEST(CapsuleBoundary, MidPromptCapsulesContinueLikeOnePrefill) {
  const auto be = make_cpu_backend();
  for (const char* name : {"qwen35", "pycoder-hybrid-12m"}) {
    const bool trained = std::string(name) == "pycoder-hybrid-12m";
    const std::string dir = trained ? trained_model_dir(name) : ref_model_dir(name);
    const auto m = load_model(dir);
    auto prompt = Reference(dir).ids(trained ? "p2.input_ids" : "T300.input_ids");
    if (trained)  // lengthen the short trained prompt with its own greedy continuation
      for (int32_t t : Reference(dir).ids("p2.greedy")) prompt.push_back(t);
    const std::string file = temp_dir() + "/boundary-" + std::string(name) + ".cap";
    for (GdnMode mode : {GdnMode::kRecurrent, GdnMode::kChunked}) {
      const Result whole = split_run(*m, *be, mode, prompt, 0, file);
      for (size_t cut : {size_t{1}, size_t{17}, size_t{37}, size_t{64}}) {
        if (cut >= prompt.size()) continue;
        SCOPED_TRACE(std::string(name) + (mode == GdnMode::kChunked ? " chunked" : " recurrent") +
                     " cut " + std::to_string(cut));
        const Result r = split_run(*m, *be, mode, prompt, cut, file);
        const bool exact = mode == GdnMode::kRecurrent || cut % 64 == 0;
        if (exact) {
          EXPECT_EQ(r.logits, whole.logits);
        } else {
          float d = 0, scale = 1;
          for (size_t i = 0; i < r.logits.size(); ++i) {
            d = std::max(d, std::fabs(r.logits[i] - whole.logits[i]));
            scale = std::max(scale, std::fabs(whole.logits[i]));
          }
          EXPECT_LE(d, 1e-4f * scale);
        }
        EXPECT_EQ(r.tokens, whole.tokens);
      }
    }
  }
}

}  // namespace
}  // namespace flashrt::testing

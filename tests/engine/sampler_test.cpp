// Sampling: greedy, temperature, top-k / top-p / min-p filtering, penalties, bias and seeding.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <numeric>

#include "engine/sampler.h"

namespace flashrt {
namespace {

std::vector<float> logits_of(std::vector<double> probs) {
  std::vector<float> l;
  for (double p : probs) l.push_back(static_cast<float>(std::log(p)));
  return l;
}

std::map<int32_t, int> draw(const std::vector<float>& l, const SamplerParams& p, int n,
                            uint64_t seed = 7) {
  RngState rng = rng_from_seed(seed);
  std::map<int32_t, int> counts;
  for (int i = 0; i < n; ++i) ++counts[sample_token(l, {}, p, rng)];
  return counts;
}

SamplerParams plain(float temp) {
  SamplerParams p;
  p.temperature = temp;
  p.top_k = 0;
  p.top_p = 1;
  p.min_p = 0;
  return p;
}

TEST(EngineSampler, GreedyPicksTheFirstLargest) {
  RngState rng = rng_from_seed(1);
  EXPECT_EQ(
      sample_token(std::vector<float>{0.1f, 3.0f, 3.0f, -1.0f}, {}, SamplerParams::greedy(), rng),
      1);
  EXPECT_EQ(argmax(std::vector<float>{-5.0f, -4.0f}), 1);
}

TEST(EngineSampler, TemperatureOneFollowsTheSoftmax) {
  const std::vector<double> probs = {0.5, 0.25, 0.15, 0.1};
  const int n = 40000;
  const auto c = draw(logits_of(probs), plain(1.0f), n);
  for (size_t i = 0; i < probs.size(); ++i)
    EXPECT_NEAR(c.count(static_cast<int32_t>(i)) ? c.at(static_cast<int32_t>(i)) / double(n) : 0.0,
                probs[i], 0.01)
        << i;
}

TEST(EngineSampler, LowTemperatureSharpens) {
  const auto c = draw(logits_of({0.4, 0.35, 0.25}), plain(0.02f), 2000);
  EXPECT_GT(c.at(0), 1900);
}

TEST(EngineSampler, TopKTopPMinPDropTheTail) {
  const auto l = logits_of({0.4, 0.3, 0.2, 0.06, 0.04});
  SamplerParams k = plain(1.0f);
  k.top_k = 2;
  for (auto [id, n] : draw(l, k, 3000)) EXPECT_LT(id, 2);
  SamplerParams p = plain(1.0f);
  p.top_p = 0.85f;  // 0.4 + 0.3 + 0.2 = 0.9 >= 0.85: the first three
  auto cp = draw(l, p, 5000);
  EXPECT_EQ(cp.size(), 3u);
  SamplerParams m = plain(1.0f);
  m.min_p = 0.2f;  // keep p >= 0.08
  auto cm = draw(l, m, 5000);
  EXPECT_EQ(cm.size(), 3u);
  EXPECT_FALSE(cm.count(3));
}

TEST(EngineSampler, RepetitionPenaltyAndBias) {
  RngState rng = rng_from_seed(1);
  SamplerParams p = SamplerParams::greedy();
  p.repeat_penalty = 2.0f;
  const std::vector<float> l = {1.0f, 1.5f, -1.0f};
  const std::vector<int32_t> recent = {1};
  EXPECT_EQ(sample_token(l, recent, p, rng), 0);  // 1.5 / 2 < 1.0
  SamplerParams b = SamplerParams::greedy();
  b.logit_bias = {{1, -INFINITY}, {2, 10.0f}};
  EXPECT_EQ(sample_token(l, {}, b, rng), 2);
}

TEST(EngineSampler, PresenceAndFrequencyPenaltiesCountTheRecentWindow) {
  // OpenAI's penalties: logit -= presence * (count > 0) + frequency * count.
  const std::vector<float> l = {3.0f, 2.5f, 0.0f};
  RngState rng = rng_from_seed(1);
  SamplerParams p = SamplerParams::greedy();
  p.presence_penalty = 0.4f;
  EXPECT_EQ(sample_token(l, std::vector<int32_t>{0}, p, rng), 0);  // 2.6 > 2.5
  p.presence_penalty = 0.6f;
  EXPECT_EQ(sample_token(l, std::vector<int32_t>{0}, p, rng), 1);  // 2.4 < 2.5
  p.presence_penalty = 0.0f;
  p.frequency_penalty = 0.3f;
  EXPECT_EQ(sample_token(l, std::vector<int32_t>{0}, p, rng), 0);        // 2.7
  EXPECT_EQ(sample_token(l, std::vector<int32_t>{0, 2, 0}, p, rng), 1);  // 2.4: counted twice
  p.repeat_last_n = 1;  // only the last token counts
  EXPECT_EQ(sample_token(l, std::vector<int32_t>{0, 2, 0}, p, rng), 0);
  p.frequency_penalty = -1.0f;  // negative: encourage
  p.repeat_last_n = 64;
  EXPECT_EQ(sample_token(l, std::vector<int32_t>{2, 2, 2, 2}, p, rng), 2);  // 0 + 4
}

TEST(EngineSampler, SameSeedSameDraws) {
  const auto l = logits_of({0.3, 0.3, 0.2, 0.2});
  RngState a = rng_from_seed(42), b = rng_from_seed(42), c = rng_from_seed(43);
  std::vector<int32_t> xa, xb, xc;
  for (int i = 0; i < 64; ++i) {
    xa.push_back(sample_token(l, {}, plain(1.0f), a));
    xb.push_back(sample_token(l, {}, plain(1.0f), b));
    xc.push_back(sample_token(l, {}, plain(1.0f), c));
  }
  EXPECT_EQ(xa, xb);
  EXPECT_NE(xa, xc);
  RngState copy = a;  // the state is plain data: a copy continues identically
  EXPECT_EQ(sample_token(l, {}, plain(1.0f), copy), sample_token(l, {}, plain(1.0f), a));
}

TEST(EngineSampler, LargeVocabularyTopP) {
  // 150k tokens, heavy head: the widening partial sort must still give the exact nucleus.
  std::vector<double> probs(150000, 0.5 / 149990);
  for (int i = 0; i < 10; ++i) probs[static_cast<size_t>(i) * 997] = 0.05;
  SamplerParams p = plain(1.0f);
  p.top_p = 0.5f;
  for (auto [id, n] : draw(logits_of(probs), p, 200)) EXPECT_EQ(id % 997, 0) << id;
}

}  // namespace
}  // namespace flashrt

// Token sampling: repetition penalty, temperature, top-k, top-p, min-p, then a draw from the RNG
// (applied in that order, as transformers' logits processors do). Temperature 0 is greedy argmax.
// The RNG state is a plain struct so it can live in the slot's arena and travel in capsules.
#pragma once
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

namespace flashrt {

struct SamplerParams {
  float temperature = 0.8f;
  int top_k = 40;               // 0 = off
  float top_p = 0.95f;          // 1 = off
  float min_p = 0.05f;          // 0 = off
  float repeat_penalty = 1.0f;  // 1 = off
  // OpenAI's penalties: logit -= presence * (count > 0) + frequency * count, counting each token in
  // the same recent window.
  float presence_penalty = 0.0f, frequency_penalty = 0.0f;  // 0 = off
  int repeat_last_n = 64;  // how many recent tokens the penalties look at (-1: all)
  // Added to the logits before anything else (OpenAI's logit_bias); -inf bans a token.
  std::vector<std::pair<int32_t, float>> logit_bias;

  static SamplerParams greedy() {
    SamplerParams p;
    p.temperature = 0;
    return p;
  }
  bool is_greedy() const { return temperature <= 0; }
  // Whether sampling reads the recent tokens.
  bool uses_recent() const {
    return repeat_last_n != 0 &&
           (repeat_penalty != 1.0f || presence_penalty != 0.0f || frequency_penalty != 0.0f);
  }
};

// xoshiro256** state.
struct RngState {
  uint64_t s[4];
};

RngState rng_from_seed(uint64_t seed);
uint64_t rng_next(RngState& r);
double rng_uniform(RngState& r);  // [0, 1)

// Index of the largest logit (the lowest index among equals).
int32_t argmax(std::span<const float> logits);

// Samples a token from `logits` (not modified). `recent` holds the tokens the repetition penalty
// applies to. Uses and advances `rng` unless greedy.
int32_t sample_token(std::span<const float> logits, std::span<const int32_t> recent,
                     const SamplerParams& p, RngState& rng);

// The distribution sample_token draws from (temperature > 0): the tokens it can pick, most likely
// first, with unnormalised weights summing to `total`. Speculative sampling compares it with a
// draft's to accept or resample (engine/speculative.h).
struct TokenDistribution {
  std::vector<int32_t> ids;
  std::vector<double> weights;
  double total = 0;
  double prob(int32_t id) const;  // 0 for a token it cannot pick
};
TokenDistribution sampling_distribution(std::span<const float> logits,
                                        std::span<const int32_t> recent, const SamplerParams& p);
// A draw from `d` with one uniform number of `rng` (what sample_token does after building it).
int32_t draw(const TokenDistribution& d, RngState& rng);

// A sampled token's log-probability and the `top` most likely alternatives (most likely first,
// the lowest id among equals), from the log-softmax of the model's own logits: before
// temperature, penalties and bias, as OpenAI and vLLM report them.
struct TokenLogprob {
  int32_t id = -1;
  float logprob = 0;
  std::vector<std::pair<int32_t, float>> top;
};
TokenLogprob token_logprob(std::span<const float> logits, int32_t id, int top);

}  // namespace flashrt

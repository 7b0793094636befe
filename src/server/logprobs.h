// Sampled tokens' log-probabilities in the two shapes OpenAI's API gives them: the legacy
// completions object (parallel arrays) and chat's per-token content list.
#pragma once
#include <nlohmann/json.hpp>
#include <span>

#include "engine/sampler.h"
#include "tokenizer/tokenizer.h"

namespace flashrt::server {

// {"tokens", "token_logprobs", "top_logprobs", "text_offset"}. `offset` is where the first token's
// text starts in the choice's text; it is advanced past these tokens (for the next stream chunk).
nlohmann::json completion_logprobs(const Tokenizer& tok, std::span<const TokenLogprob> lps,
                                   size_t& offset);

// {"content": [{"token", "logprob", "bytes", "top_logprobs": [...]}], "refusal": null}.
nlohmann::json chat_logprobs(const Tokenizer& tok, std::span<const TokenLogprob> lps);

}  // namespace flashrt::server

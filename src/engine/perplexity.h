// Perplexity of a token sequence: exp of the mean negative log-likelihood of each token given the
// tokens before it, evaluated in independent windows of `window` tokens (the first token of each
// window is context only), as llama.cpp's perplexity tool does without its half-window overlap.
#pragma once
#include <cstdint>
#include <functional>
#include <span>

#include "engine/session.h"

namespace flashrt {

struct PerplexityResult {
  double perplexity = 0;
  double mean_nll = 0;
  int64_t tokens_scored = 0;
  int windows = 0;
};

PerplexityResult perplexity(const Model& m, Backend& be, std::span<const int32_t> ids, int window,
                            const std::function<void(int done, int total)>& progress = nullptr);

}  // namespace flashrt

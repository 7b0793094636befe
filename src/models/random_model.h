// Random-weight models with real shapes (Qwen3-0.6B, Qwen3.5-0.8B, ...) for benchmarks and tests:
// the same code paths and memory traffic as the real thing, without downloading it.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "models/model.h"

namespace flashrt {

// The shapes an architecture names (Architecture::shapes(): qwen3 "0.6b", "tiny"; qwen3_5 "0.8b",
// "tiny"), and one of them; unknown names are an Error listing the known ones.
std::vector<std::string> model_shape_names(const std::string& arch);
ModelConfig model_shape(const std::string& arch, const std::string& shape);

// A model of config `c` whose weights are drawn as their tables say (RandomInit): bf16 matrices
// from N(0, 0.02) and plausible small parameters (norm multipliers near 1, decay rates as
// transformers initialises them), deterministic in `seed`.
std::unique_ptr<Model> make_random_model(const ModelConfig& c, uint64_t seed);

}  // namespace flashrt

// Shared pieces of the `flashrt` subcommands: option groups and loading.
#pragma once
#include <CLI/CLI.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "engine/session.h"
#include "models/model.h"
#include "tokenizer/tokenizer.h"

namespace flashrt::cli {

struct ModelOptions {
  std::string model;
  int threads = 0;
  int64_t ctx = 4096;
  int batch = 512;
  std::string gdn = "auto";
  std::string kv_type = "f32";
  std::string device = "cpu";
};

// A model loaded for a backend (weights uploaded where the backend needs them).
struct Loaded {
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Model> model;
};

struct SamplingOptions {
  float temp = 0.8f, top_p = 0.95f, min_p = 0.05f, repeat_penalty = 1.0f;
  int top_k = 40;
  int64_t seed = -1;
};
void add_sampling_options(CLI::App* cmd, SamplingOptions& o);
SamplerParams sampler_params(const SamplingOptions& o);
// The given seed, or a random one.
uint64_t seed_of(const SamplingOptions& o);

// Adds -m/--model, -t/--threads, --ctx, --batch, --gdn to a subcommand.
void add_model_options(CLI::App* cmd, ModelOptions& o, bool with_session = true);
// Applies thread settings, makes the backend and loads the model onto it.
Loaded load(const ModelOptions& o);
SessionOptions session_options(const ModelOptions& o);
// The model's tokenizer with the chat template `--chat-template` asks for: empty keeps the model's,
// a built-in family name (chatml, qwen3, qwen3.5) is returned in `family` (rendered natively), and
// anything else is a Jinja template file that replaces the model's.
Tokenizer load_chat_tokenizer(const std::string& model, const std::string& chat_template,
                              std::string* family);
extern const char* const kChatTemplateHelp;
// Parses "1,2,3" or "1 2 3" (an empty item between commas is an error).
std::vector<int32_t> parse_ids(const std::string& s);
// Checks an -o path before any work: not a directory, in a directory that exists. And says so
// when the output replaces the input.
extern const CLI::Validator kOutputFile;
void check_not_input(const std::string& output, const std::string& input);

// Subcommand registration (one file each).
void register_run(CLI::App& app);
void register_logits(CLI::App& app);
void register_convert(CLI::App& app);
void register_quantize(CLI::App& app);
void register_info(CLI::App& app);
void register_tokenize(CLI::App& app);
void register_chat(CLI::App& app);
void register_capsule(CLI::App& app);
void register_demo(CLI::App& app);
void register_make_model(CLI::App& app);
void register_perplexity(CLI::App& app);
void register_serve(CLI::App& app);
void register_template(CLI::App& app);

}  // namespace flashrt::cli

#include "cli/common.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "core/thread_pool.h"
#include "tokenizer/gguf_vocab.h"

namespace flashrt::cli {

void add_model_options(CLI::App* cmd, ModelOptions& o, bool with_session) {
  cmd->add_option("-m,--model", o.model,
                  "Model: an HF folder (config.json + safetensors) or a .gguf file")
      ->required();
  cmd->add_option("-t,--threads", o.threads,
                  "CPU threads (default: all cores; more than the cores are capped to them)")
      ->check(CLI::Range(1, 4096));
  cmd->add_option("-d,--device", o.device, "Backend: cpu or cuda")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
  if (!with_session) return;
  cmd->add_option("--ctx", o.ctx, "Context size: tokens of state allocated for the sequence")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30))
      ->capture_default_str();
  cmd->add_option("--batch", o.batch, "Prompt tokens per forward pass")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  cmd->add_option("--kv-type", o.kv_type,
                  "KV cache type: f32 (exact) or f16 (half the memory and capsule size, faster "
                  "decode at long context; CPU only)")
      ->check(CLI::IsMember({"f32", "f16"}))
      ->capture_default_str();
  cmd->add_option("--gdn", o.gdn, "Gated DeltaNet prefill: auto, recurrent or chunked")
      ->check(CLI::IsMember({"auto", "recurrent", "chunked"}))
      ->capture_default_str();
}

void add_sampling_options(CLI::App* cmd, SamplingOptions& o) {
  // The ranges the server accepts (docs/API.md), said as a user would read them.
  auto within = [](double lo, double hi, bool lo_open, const char* range) {
    return CLI::Validator(
        [=](std::string& s) -> std::string {
          double v = 0;
          try {
            size_t used = 0;
            v = std::stod(s, &used);
            if (used != s.size()) return std::string("'") + s + "' is not a number";
          } catch (...) {
            return std::string("'") + s + "' is not a number";
          }
          if (v > hi || v < lo || (lo_open && v == lo))
            return std::string("must be in ") + range + " (got " + s + ")";
          return "";
        },
        range);
  };
  cmd->add_option("--temp", o.temp, "Temperature; 0 is greedy")
      ->check(within(0, 100, false, "[0, 100]"))
      ->capture_default_str();
  cmd->add_option("--top-k", o.top_k, "Top-k (0 = off)")
      ->check(CLI::Range(0, std::numeric_limits<int>::max()))
      ->capture_default_str();
  cmd->add_option("--top-p", o.top_p, "Top-p (1 = off)")
      ->check(within(0, 1, true, "(0, 1]"))
      ->capture_default_str();
  cmd->add_option("--min-p", o.min_p, "Min-p (0 = off)")
      ->check(within(0, 1, false, "[0, 1]"))
      ->capture_default_str();
  cmd->add_option("--repeat-penalty", o.repeat_penalty,
                  "Repetition penalty over the last 64 tokens (1 = off)")
      ->check(within(0.01, 100, false, "[0.01, 100]"))
      ->capture_default_str();
  cmd->add_option("--seed", o.seed, "Sampling seed (default: random)");
}

SamplerParams sampler_params(const SamplingOptions& o) {
  SamplerParams p;
  p.temperature = o.temp;
  p.top_k = o.top_k;
  p.top_p = o.top_p;
  p.min_p = o.min_p;
  p.repeat_penalty = o.repeat_penalty;
  return p;
}

uint64_t seed_of(const SamplingOptions& o) {
  return o.seed >= 0 ? static_cast<uint64_t>(o.seed) : std::random_device{}();
}

const char* const kChatTemplateHelp =
    "Chat template: a Jinja file replacing the model's own, or a built-in rendered natively "
    "(chatml, qwen3, qwen3.5); default: the model's template";

Tokenizer load_chat_tokenizer(const std::string& model, const std::string& chat_template,
                              std::string* family) {
  Tokenizer tok = load_tokenizer(model);
  family->clear();
  if (chat_template.empty()) return tok;
  for (const char* name : {"chatml", "qwen3", "qwen3.5", "qwen35"}) {
    if (chat_template == name) {
      *family = name;
      return tok;
    }
  }
  std::ifstream f(chat_template, std::ios::binary);
  FLASHRT_CHECK(
      f.good(),
      "--chat-template {:?}: not a built-in template (chatml, qwen3, qwen3.5) and no such "
      "file",
      chat_template);
  std::stringstream ss;
  ss << f.rdbuf();
  try {
    return tok.with_chat_template(ss.str());
  } catch (const Error& e) {
    fail("--chat-template {}: {}", chat_template, e.what());
  }
}

Loaded load(const ModelOptions& o) {
  if (o.threads > 0) {
    // More threads than cores only make them wait for each other (-t 64 on 2 cores: 13x slower).
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    int t = o.threads;
    if (t > cores) {
      std::fprintf(stderr, "note: -t %d is more than the %d cores here; using %d threads\n", t,
                   cores, cores);
      t = cores;
    }
    ThreadPool::set_default_threads(t);
  }
  Loaded l;
  l.backend = make_backend(o.device);
  l.model = load_model(o.model, *l.backend);
  return l;
}

SessionOptions session_options(const ModelOptions& o) {
  SessionOptions s;
  s.max_ctx = o.ctx;
  s.max_batch = o.batch;
  s.kv_dtype = o.kv_type == "f16" ? DType::F16 : DType::F32;
  s.gdn_mode = o.gdn == "recurrent" ? GdnMode::kRecurrent
               : o.gdn == "chunked" ? GdnMode::kChunked
                                    : GdnMode::kAuto;
  return s;
}

const CLI::Validator kOutputFile(
    [](std::string& path) -> std::string {
      namespace fs = std::filesystem;
      std::error_code ec;
      if (fs::is_directory(path, ec)) return "'" + path + "' is a directory: give a file name";
      const fs::path dir = fs::path(path).parent_path();
      if (!dir.empty() && !fs::is_directory(dir, ec))
        return "the directory '" + dir.string() + "' does not exist";
      return "";
    },
    "FILE");

void check_not_input(const std::string& output, const std::string& input) {
  std::error_code ec;
  if (std::filesystem::equivalent(output, input, ec))
    std::fprintf(stderr,
                 "note: the output '%s' is the input file: it is replaced once the new file is "
                 "complete (written beside it, then renamed)\n",
                 output.c_str());
}

std::vector<int32_t> parse_ids(const std::string& s) {
  std::vector<int32_t> ids;
  std::string cur;
  bool item_open = false;  // a comma was seen and no id after it yet
  auto flush = [&] {
    if (cur.empty()) return;
    item_open = false;
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(cur, &used);
    } catch (...) {
      used = 0;
    }
    if (used != cur.size() || v < 0 || v > INT32_MAX) fail("'{}' is not a token id", cur);
    ids.push_back(static_cast<int32_t>(v));
    cur.clear();
  };
  for (char c : s) {
    if (c == ',') {
      flush();
      if (item_open || ids.empty()) fail("'{}' has an empty item between commas", s);
      item_open = true;
    } else if (c == ' ' || c == '\t' || c == '\n') {
      flush();
    } else {
      cur += c;
    }
  }
  flush();
  if (item_open) fail("'{}' ends with a comma", s);
  return ids;
}

}  // namespace flashrt::cli

#include "cli/common.h"

#include <random>
#include <sstream>

#include "core/error.h"
#include "core/thread_pool.h"

namespace flashrt::cli {

void add_model_options(CLI::App* cmd, ModelOptions& o, bool with_session) {
  cmd->add_option("-m,--model", o.model,
                  "Model: an HF folder (config.json + safetensors) or a .gguf file")
      ->required();
  cmd->add_option("-t,--threads", o.threads, "CPU threads (default: all cores)");
  cmd->add_option("-d,--device", o.device, "Backend: cpu or cuda")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
  if (!with_session) return;
  cmd->add_option("--ctx", o.ctx, "Context size: tokens of state allocated for the sequence")
      ->capture_default_str();
  cmd->add_option("--batch", o.batch, "Prompt tokens per forward pass")->capture_default_str();
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
  cmd->add_option("--temp", o.temp, "Temperature; 0 is greedy")->capture_default_str();
  cmd->add_option("--top-k", o.top_k, "Top-k (0 = off)")->capture_default_str();
  cmd->add_option("--top-p", o.top_p, "Top-p (1 = off)")->capture_default_str();
  cmd->add_option("--min-p", o.min_p, "Min-p (0 = off)")->capture_default_str();
  cmd->add_option("--repeat-penalty", o.repeat_penalty,
                  "Repetition penalty over the last 64 tokens (1 = off)")
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

Loaded load(const ModelOptions& o) {
  if (o.threads > 0) ThreadPool::set_default_threads(o.threads);
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

std::vector<int32_t> parse_ids(const std::string& s) {
  std::vector<int32_t> ids;
  std::string cur;
  auto flush = [&] {
    if (cur.empty()) return;
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
    if (c == ',' || c == ' ' || c == '\t' || c == '\n')
      flush();
    else
      cur += c;
  }
  flush();
  return ids;
}

}  // namespace flashrt::cli

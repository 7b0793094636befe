#include "cli/common.h"

#include <sstream>

#include "core/error.h"
#include "core/thread_pool.h"

namespace flashrt::cli {

void add_model_options(CLI::App* cmd, ModelOptions& o, bool with_session) {
  cmd->add_option("-m,--model", o.model, "Model: an HF folder (config.json + safetensors) or a .gguf file")
      ->required();
  cmd->add_option("-t,--threads", o.threads, "CPU threads (default: all cores)");
  cmd->add_option("-d,--device", o.device, "Backend: cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}))->capture_default_str();
  if (!with_session) return;
  cmd->add_option("--ctx", o.ctx, "Context size: tokens of state allocated for the sequence")
      ->capture_default_str();
  cmd->add_option("--batch", o.batch, "Prompt tokens per forward pass")->capture_default_str();
  cmd->add_option("--gdn", o.gdn, "Gated DeltaNet prefill: auto, recurrent or chunked")
      ->check(CLI::IsMember({"auto", "recurrent", "chunked"}))
      ->capture_default_str();
}

Loaded load(const ModelOptions& o) {
  if (o.threads > 0) ThreadPool::set_default_threads(o.threads);
  Loaded l;
  l.backend = make_backend(o.device);
  l.model = load_model(o.model);
  l.backend->upload_weights(l.model->w);
  return l;
}

SessionOptions session_options(const ModelOptions& o) {
  SessionOptions s;
  s.max_ctx = o.ctx;
  s.max_batch = o.batch;
  s.gdn_mode = o.gdn == "recurrent" ? GdnMode::kRecurrent : o.gdn == "chunked" ? GdnMode::kChunked : GdnMode::kAuto;
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
    if (c == ',' || c == ' ' || c == '\t' || c == '\n') flush();
    else cur += c;
  }
  flush();
  return ids;
}

}  // namespace flashrt::cli

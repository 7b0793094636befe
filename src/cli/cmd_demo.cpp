// flashrt demo (what `make run` shows): the capsule workflow on a model. Prefill a prompt, snapshot
// the whole execution state, generate, restore and generate again (identical), fork into two
// different continuations, compare time-to-first-token of a cold prefill with a restore, and decode
// speculatively (n-gram lookup, exact rollback) from the same boundary.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "capsule/capsule_file.h"
#include "cli/common.h"
#include "core/error.h"
#include "engine/speculative.h"
#include "tokenizer/gguf_vocab.h"

namespace flashrt::cli {

namespace {

constexpr const char* kDefaultPrompt = R"(import os
import sys
import json


class Config:
    """Settings read from a JSON file, with defaults for anything missing."""

    def __init__(self, path, defaults=None):
        self.path = path
        self.values = dict(defaults or {})
        if os.path.exists(path):
            with open(path) as f:
                self.values.update(json.load(f))

    def get(self, key, default=None):
        return self.values.get(key, default)

    def save(self):
        with open(self.path, "w") as f:
            json.dump(self.values, f, indent=2)


def main(argv):
    config = Config(argv[1] if len(argv) > 1 else "config.json")
    for key in sorted(config.values):
)";

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

struct DemoOptions {
  ModelOptions m;
  std::string prompt = kDefaultPrompt;
  int n = 40;
};

void demo(const DemoOptions& o) {
  auto loaded = load(o.m);
  const Model& model = *loaded.model;
  Backend& be = *loaded.backend;
  const Tokenizer tok = load_tokenizer(o.m.model);
  const auto prompt = tok.encode(o.prompt);
  const SessionOptions so = session_options(o.m);
  auto text = [&](const std::vector<int32_t>& ids) {
    return tok.decode(ids, /*skip_special=*/true);
  };
  const SamplerParams greedy = SamplerParams::greedy();

  std::printf("== flashrt demo: %s (%s, %.1f M parameters), %zu-token prompt\n\n",
              model.path.c_str(), model.cfg.arch.c_str(), model.param_count() / 1e6, prompt.size());

  // 1. Cold start: prefill the prompt, first token.
  Session s(model, be, so);
  auto t = Clock::now();
  s.append(prompt);
  s.next_token(greedy);
  const double cold_ttft = ms_since(t);

  // 2. Snapshot the boundary after the prompt... (rebuild it: the first token is part of step 3)
  Session base(model, be, so);
  base.append(prompt);
  t = Clock::now();
  const Capsule host = base.snapshot(Tier::kHost);
  const double snap_ms = ms_since(t);
  const std::string file = (std::filesystem::temp_directory_path() / "flashrt-demo.cap").string();
  t = Clock::now();
  base.snapshot(Tier::kDisk, file);
  const double save_ms = ms_since(t);

  // 3. Generate, restore, generate again.
  const auto first = base.generate(o.n, greedy, {}).tokens;
  std::printf("-- greedy continuation:\n%s%s\n\n",
              o.prompt.substr(o.prompt.size() > 120 ? o.prompt.size() - 120 : 0).c_str(),
              text(first).c_str());
  t = Clock::now();
  base.restore(host);
  base.next_token(greedy);
  const double restore_ttft = ms_since(t);
  base.restore(host);
  const auto again = base.generate(o.n, greedy, {}).tokens;
  std::printf("-- after restore: %s\n\n",
              again == first ? "identical tokens" : "DIFFERENT tokens (bug)");

  // 4. From disk, in a brand-new session.
  Session fresh(model, be, so);
  t = Clock::now();
  fresh.restore(read_capsule_file(file));
  fresh.next_token(greedy);
  const double disk_ttft = ms_since(t);
  fresh.restore(host);
  const bool disk_same = fresh.generate(o.n, greedy, {}).tokens == first;

  // 5. Fork the boundary into two sampled continuations.
  base.restore(host);
  SamplerParams warm;
  warm.temperature = 0.9f;
  for (uint64_t seed : {1, 2}) {
    auto f = base.fork();
    f->seed(seed);
    std::printf("-- fork %llu (temperature 0.9, seed %llu):\n...%s\n\n",
                static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed),
                text(f->generate(o.n, warm, {}).tokens).c_str());
  }

  // 6. Speculative decoding from the same boundary: n-gram drafts, one verify step each, and the
  // slot rolled back exactly past the accepted ones; the tokens are plain greedy's.
  const int spec_n = std::max(o.n, 96);
  base.restore(host);
  t = Clock::now();
  const auto plain = base.generate(spec_n, greedy, {}).tokens;
  const double plain_ms = ms_since(t);
  base.restore(host);
  NgramDrafter ngram;
  SpeculativeDecoder spec(base, ngram);
  t = Clock::now();
  const auto fast = spec.generate(spec_n, greedy, {}).tokens;
  const double spec_ms = ms_since(t);
  std::printf("== speculative decoding (n-gram lookup), %d greedy tokens\n", spec_n);
  std::printf("   plain        %8.1f tokens/s\n", plain.size() / (plain_ms / 1e3));
  std::printf(
      "   speculative  %8.1f tokens/s   %.2fx, %.0f%% of drafts accepted, %.2f tokens per "
      "step, %s\n\n",
      fast.size() / (spec_ms / 1e3), plain_ms / spec_ms, 100 * spec.stats().acceptance_rate(),
      spec.stats().mean_accepted_length(),
      fast == plain ? "identical tokens" : "DIFFERENT tokens (bug)");

  std::printf("== time to first token after a %zu-token prompt\n", prompt.size());
  std::printf("   cold prefill            %8.2f ms\n", cold_ttft);
  std::printf("   restore (host memory)   %8.2f ms   %.1fx faster\n", restore_ttft,
              cold_ttft / restore_ttft);
  std::printf("   restore (capsule file)  %8.2f ms   %.1fx faster%s\n", disk_ttft,
              cold_ttft / disk_ttft, disk_same ? "" : "  (tokens DIFFER: bug)");
  std::printf("   snapshot %.2f ms to memory, %.2f ms to %s; %.2f MB of state\n", snap_ms, save_ms,
              file.c_str(), host.payload_bytes() / 1e6);
  std::filesystem::remove(file);
  if (again != first || !disk_same) fail("restored sessions did not continue identically");
  if (fast != plain) fail("speculative decoding did not reproduce greedy decoding");
}

}  // namespace

void register_demo(CLI::App& app) {
  auto o = std::make_shared<DemoOptions>();
  auto* cmd = app.add_subcommand("demo", "Show capsules at work: snapshot, restore, fork, TTFT");
  add_model_options(cmd, o->m);
  cmd->add_option("-p,--prompt", o->prompt, "Prompt (default: a piece of Python)");
  cmd->add_option("-n,--n-predict", o->n, "Tokens per continuation")->capture_default_str();
  cmd->callback([o] { demo(*o); });
}

}  // namespace flashrt::cli

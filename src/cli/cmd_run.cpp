// flashrt run: prefill a prompt and stream a continuation.
#include <chrono>
#include <cstdio>
#include <random>

#include "cli/common.h"
#include "core/error.h"

namespace flashrt::cli {

namespace {

struct RunOptions {
  ModelOptions m;
  std::string ids;
  std::string prompt;
  int n = 128;
  float temp = 0.8f, top_p = 0.95f, min_p = 0.05f, repeat_penalty = 1.0f;
  int top_k = 40;
  int64_t seed = -1;
  bool print_ids = false, stats = false, ignore_eos = false;
  std::string stop_ids;
};

void run(const RunOptions& o) {
  auto loaded = load(o.m);
  auto& model = loaded.model;
  Session s(*model, *loaded.backend, session_options(o.m));
  std::vector<int32_t> prompt;
  if (!o.ids.empty()) {
    prompt = parse_ids(o.ids);
  } else {
    fail("text prompts need the tokenizer; pass --ids for now");
  }
  FLASHRT_CHECK(!prompt.empty(), "the prompt is empty");

  SamplerParams p;
  p.temperature = o.temp;
  p.top_k = o.top_k;
  p.top_p = o.top_p;
  p.min_p = o.min_p;
  p.repeat_penalty = o.repeat_penalty;
  s.seed(o.seed >= 0 ? static_cast<uint64_t>(o.seed) : std::random_device{}());

  std::vector<int32_t> stops;
  if (!o.ignore_eos) stops = model->cfg.eos_ids;
  for (int32_t id : parse_ids(o.stop_ids)) stops.push_back(id);

  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  s.append(prompt);
  const auto t1 = clock::now();
  bool first = true;
  const auto r = s.generate(o.n, p, stops, [&](int32_t id) {
    std::printf(first ? "%d" : " %d", id);
    first = false;
    std::fflush(stdout);
    return true;
  });
  std::printf("\n");
  const auto t2 = clock::now();
  if (o.stats) {
    const double pre = std::chrono::duration<double>(t1 - t0).count();
    const double gen = std::chrono::duration<double>(t2 - t1).count();
    std::fprintf(stderr, "prompt: %zu tokens in %.3f s (%.1f t/s); generated %zu tokens in %.3f s (%.1f t/s); finish: %s\n",
                 prompt.size(), pre, prompt.size() / pre, r.tokens.size(), gen, r.tokens.size() / gen,
                 finish_reason_name(r.finish));
  }
}

}  // namespace

void register_run(CLI::App& app) {
  auto o = std::make_shared<RunOptions>();
  auto* cmd = app.add_subcommand("run", "Prefill a prompt and stream the continuation");
  add_model_options(cmd, o->m);
  auto* ids = cmd->add_option("--ids", o->ids, "Prompt as token ids: 1,2,3");
  cmd->add_option("-p,--prompt", o->prompt, "Prompt text")->excludes(ids);
  cmd->add_option("-n,--n-predict", o->n, "Maximum tokens to generate")->capture_default_str();
  cmd->add_option("--temp", o->temp, "Temperature; 0 is greedy")->capture_default_str();
  cmd->add_option("--top-k", o->top_k, "Top-k (0 = off)")->capture_default_str();
  cmd->add_option("--top-p", o->top_p, "Top-p (1 = off)")->capture_default_str();
  cmd->add_option("--min-p", o->min_p, "Min-p (0 = off)")->capture_default_str();
  cmd->add_option("--repeat-penalty", o->repeat_penalty, "Repetition penalty (1 = off)")->capture_default_str();
  cmd->add_option("--seed", o->seed, "Sampling seed (default: random)");
  cmd->add_option("--stop-ids", o->stop_ids, "Extra token ids that end generation: 5,6");
  cmd->add_flag("--ignore-eos", o->ignore_eos, "Do not stop at the model's end-of-sequence tokens");
  cmd->add_flag("--print-ids", o->print_ids, "Print only the generated token ids, space-separated");
  cmd->add_flag("--stats", o->stats, "Print timings to stderr");
  cmd->callback([o] { run(*o); });
}

}  // namespace flashrt::cli

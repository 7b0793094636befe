// flashrt run: prefill a prompt and stream a continuation.
#include <chrono>
#include <cstdio>
#include <limits>
#include <optional>

#include "capsule/capsule_file.h"
#include "cli/common.h"
#include "core/error.h"
#include "tokenizer/gguf_vocab.h"
#include "tokenizer/stream_decoder.h"

namespace flashrt::cli {

namespace {

struct RunOptions {
  ModelOptions m;
  std::string ids;
  std::string prompt;
  std::string capsule;
  int n = 128;
  SamplingOptions sampling;
  bool print_ids = false, stats = false, ignore_eos = false, echo = true;
  std::string stop_ids;
};

void run(const RunOptions& o) {
  // Ids are checked before the model loads.
  const std::vector<int32_t> given_ids = parse_ids(o.ids), extra_stops = parse_ids(o.stop_ids);
  auto loaded = load(o.m);
  auto& model = loaded.model;
  Session s(*model, *loaded.backend, session_options(o.m));
  // Text in and out needs the model's tokenizer; ids in and --print-ids out do not.
  std::optional<Tokenizer> tok;
  if (o.ids.empty() && !o.prompt.empty()) {
    tok = load_tokenizer(o.m.model);
  } else if (!o.print_ids) {
    try {
      tok = load_tokenizer(o.m.model);
    } catch (const Error& e) {  // ids in, ids out: the model may come without a tokenizer
      std::fprintf(stderr, "note: printing token ids (%s)\n", e.what());
    }
  }
  const bool print_ids = o.print_ids || !tok;
  std::vector<int32_t> prompt =
      o.ids.empty() ? (tok ? tok->encode(o.prompt) : std::vector<int32_t>{}) : given_ids;
  if (!o.capsule.empty()) {
    // Continue from a saved boundary: the capsule holds the whole state, nothing is re-prefilled.
    const auto t = std::chrono::steady_clock::now();
    s.restore(read_capsule_file(o.capsule));
    if (o.stats)
      std::fprintf(
          stderr, "restored %lld tokens from %s in %.2f ms\n", static_cast<long long>(s.pos()),
          o.capsule.c_str(),
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count());
  } else {
    FLASHRT_CHECK(!prompt.empty(), "the prompt is empty (give -p TEXT or --ids)");
  }

  const SamplerParams p = sampler_params(o.sampling);
  // A capsule carries its sampler RNG; an explicit --seed replaces it.
  if (o.capsule.empty() || o.sampling.seed >= 0) s.seed(seed_of(o.sampling));

  std::vector<int32_t> stops;
  if (!o.ignore_eos) {
    stops = model->cfg.eos_ids;
    if (tok)
      for (int32_t id : tok->stop_ids()) stops.push_back(id);
  }
  for (int32_t id : extra_stops) stops.push_back(id);

  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  s.append(prompt);
  const auto t1 = clock::now();
  bool first = true;
  std::optional<StreamDecoder> dec;
  if (!print_ids) {
    dec.emplace(*tok, /*skip_special=*/true);
    if (o.echo) std::fputs(tok->decode(prompt).c_str(), stdout);
  }
  const auto r = s.generate(o.n, p, stops, [&](int32_t id) {
    if (dec) {
      std::fputs(dec->push(id).c_str(), stdout);
    } else {
      std::printf(first ? "%d" : " %d", id);
    }
    first = false;
    std::fflush(stdout);
    return true;
  });
  if (dec) std::fputs(dec->flush().c_str(), stdout);
  std::printf("\n");
  if (r.finish == FinishReason::kContextFull)
    std::fprintf(stderr, "note: stopped after %zu tokens: the context (--ctx %lld) is full\n",
                 r.tokens.size(), static_cast<long long>(o.m.ctx));
  const auto t2 = clock::now();
  if (o.stats) {
    const double pre = std::chrono::duration<double>(t1 - t0).count();
    const double gen = std::chrono::duration<double>(t2 - t1).count();
    std::fprintf(stderr,
                 "prompt: %zu tokens in %.3f s (%.1f t/s); generated %zu tokens in %.3f s (%.1f "
                 "t/s); finish: %s\n",
                 prompt.size(), pre, prompt.size() / pre, r.tokens.size(), gen,
                 r.tokens.size() / gen, finish_reason_name(r.finish));
  }
}

}  // namespace

void register_run(CLI::App& app) {
  auto o = std::make_shared<RunOptions>();
  auto* cmd = app.add_subcommand("run", "Prefill a prompt and stream the continuation");
  add_model_options(cmd, o->m);
  auto* ids = cmd->add_option("--ids", o->ids, "Prompt as token ids: 1,2,3");
  cmd->add_option("-p,--prompt", o->prompt, "Prompt text")->excludes(ids);
  cmd->add_option("--capsule", o->capsule,
                  "Start from a capsule file (flashrt capsule save); -p/--ids then add to it");
  cmd->add_option("-n,--n-predict", o->n, "Maximum tokens to generate")
      ->check(CLI::Range(0, std::numeric_limits<int>::max()))
      ->capture_default_str();
  add_sampling_options(cmd, o->sampling);
  cmd->add_option("--stop-ids", o->stop_ids, "Extra token ids that end generation: 5,6");
  cmd->add_flag("--ignore-eos", o->ignore_eos, "Do not stop at the model's end-of-sequence tokens");
  cmd->add_flag("--print-ids", o->print_ids, "Print only the generated token ids, space-separated");
  cmd->add_flag("!--no-echo", o->echo, "Do not print the prompt before the continuation");
  cmd->add_flag("--stats", o->stats, "Print timings to stderr");
  cmd->callback([o] { run(*o); });
}

}  // namespace flashrt::cli

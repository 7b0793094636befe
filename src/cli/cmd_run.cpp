// flashrt run: prefill a prompt and stream a continuation.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "capsule/capsule_file.h"
#include "cli/common.h"
#include "core/error.h"
#include "engine/constraint.h"
#include "engine/speculative.h"
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
  // Speculative decoding: "" (off), "ngram", "draft" (with draft_model) or "mtp".
  std::string spec, draft_model;
  int draft_max = 8;
  int64_t draft_vocab = 0;  // --spec mtp: drafts from the first N tokens (0: all)
  // The output constrained to a JSON Schema (file), any JSON object, or a GBNF grammar (file).
  std::string json_schema, grammar;
  bool json = false;
};

std::string read_text_file(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  FLASHRT_CHECK(in.good(), "{} {}: cannot read the file", what, path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The constraint the options ask for (null: none). Compiled before the model loads, so a bad
// schema or grammar is reported at once.
std::shared_ptr<const ConstraintSpec> constraint_of(const RunOptions& o) {
  try {
    if (!o.json_schema.empty()) {
      const auto text = read_text_file(o.json_schema, "--json-schema");
      const auto schema = nlohmann::ordered_json::parse(text, nullptr, false);
      FLASHRT_CHECK(!schema.is_discarded(), "not valid JSON");
      return constraint_from_json_schema(schema);
    }
    if (!o.grammar.empty()) return constraint_from_gbnf(read_text_file(o.grammar, "--grammar"));
    if (o.json) return constraint_json_object();
  } catch (const Error& e) {
    fail("{} {}: {}", o.json_schema.empty() ? "--grammar" : "--json-schema",
         o.json_schema.empty() ? o.grammar : o.json_schema, e.what());
  }
  return nullptr;
}

// The drafter --spec asks for; the draft model (kept in `draft`) must share the target's
// vocabulary.
std::unique_ptr<Drafter> make_drafter(const RunOptions& o, Session& target, Backend& be,
                                      std::unique_ptr<Model>* draft) {
  if (o.spec == "ngram") return std::make_unique<NgramDrafter>();
  if (o.spec == "mtp")
    return std::make_unique<MtpDrafter>(target, seed_of(o.sampling), o.draft_vocab);
  FLASHRT_CHECK(!o.draft_model.empty(), "--spec draft needs --draft MODEL");
  *draft = load_model(o.draft_model, be);
  FLASHRT_CHECK((*draft)->cfg.vocab == target.model().cfg.vocab,
                "the draft model {} has {} tokens, the model {}: they must share a tokenizer",
                o.draft_model, (*draft)->cfg.vocab, target.model().cfg.vocab);
  return std::make_unique<DraftModelDrafter>(**draft, be, session_options(o.m),
                                             seed_of(o.sampling));
}

void run(const RunOptions& o) {
  // Ids are checked before the model loads.
  const std::vector<int32_t> given_ids = parse_ids(o.ids), extra_stops = parse_ids(o.stop_ids);
  const auto constraint_spec = constraint_of(o);
  FLASHRT_CHECK(!constraint_spec || !o.ignore_eos,
                "--ignore-eos cannot be combined with a constrained output: it ends at the "
                "end-of-turn token once complete");
  auto loaded = load(o.m);
  auto& model = loaded.model;
  SessionOptions so = session_options(o.m);
  so.mtp = o.spec == "mtp";  // the MTP head runs along, its state in the slot
  Session s(*model, *loaded.backend, so);
  // Text in and out needs the model's tokenizer; ids in and --print-ids out do not.
  std::optional<Tokenizer> tok;
  if ((o.ids.empty() && !o.prompt.empty()) || constraint_spec) {  // a mask needs token bytes
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

  std::unique_ptr<Model> draft;
  std::unique_ptr<Drafter> drafter;
  std::optional<SpeculativeDecoder> spec;
  if (!o.spec.empty()) {
    drafter = make_drafter(o, s, *loaded.backend, &draft);
    spec.emplace(s, *drafter, SpecOptions{.draft_max = o.draft_max});
  }

  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  s.append(prompt);
  if (drafter) drafter->prime(s.tokens());  // a draft model prefills with the target
  const auto t1 = clock::now();
  bool first = true;
  std::optional<StreamDecoder> dec;
  if (!print_ids) {
    dec.emplace(*tok, /*skip_special=*/true);
    if (o.echo) std::fputs(tok->decode(prompt).c_str(), stdout);
  }
  auto on_token = [&](int32_t id) {
    if (dec) {
      std::fputs(dec->push(id).c_str(), stdout);
    } else {
      std::printf(first ? "%d" : " %d", id);
    }
    first = false;
    std::fflush(stdout);
    return true;
  };
  std::optional<OutputConstraint> constraint;
  if (constraint_spec) constraint.emplace(constraint_spec, make_token_masker(*tok, stops));
  OutputConstraint* c = constraint ? &*constraint : nullptr;
  const auto r =
      spec ? spec->generate(o.n, p, stops, on_token, c) : s.generate(o.n, p, stops, on_token, c);
  if (constraint && !constraint->complete())
    std::fprintf(stderr, "note: the output is incomplete (-n %d reached before the %s ended)\n",
                 o.n, constraint_spec->kind.c_str());
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
    if (spec) {
      const SpecStats& st = spec->stats();
      std::fprintf(stderr,
                   "speculative (%s): %lld verify steps + %lld plain, %lld drafted, %lld accepted "
                   "(acceptance %.1f%%), mean accepted length %.2f tokens per target step; "
                   "%.1f ms drafting, %.1f ms in target steps\n",
                   drafter->name().c_str(), static_cast<long long>(st.steps),
                   static_cast<long long>(st.plain_steps), static_cast<long long>(st.drafted),
                   static_cast<long long>(st.accepted), 100 * st.acceptance_rate(),
                   st.mean_accepted_length(), st.draft_ms, st.verify_ms);
    }
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
  cmd->add_flag("--stats", o->stats, "Print timings (and speculative acceptance) to stderr");
  cmd->add_option("--spec", o->spec,
                  "Speculative decoding: ngram (prompt lookup), draft (a smaller model, --draft) "
                  "or mtp (the model's own MTP head)")
      ->check(CLI::IsMember({"ngram", "draft", "mtp"}));
  cmd->add_option("--draft", o->draft_model, "Draft model for --spec draft (same tokenizer)")
      ->check(CLI::ExistingPath);
  cmd->add_option("--draft-vocab", o->draft_vocab,
                  "--spec mtp: draft only the first N tokens of the vocabulary (the most frequent "
                  "in BPE order; a draft step reads N rows of the LM head); 0: all")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--draft-max", o->draft_max, "Draft tokens per verify step at most (adaptive)")
      ->check(CLI::Range(1, 16))
      ->capture_default_str();
  auto* js = cmd->add_option("--json-schema", o->json_schema,
                             "Constrain the output to JSON valid under this JSON Schema file")
                 ->check(CLI::ExistingFile);
  auto* gr = cmd->add_option("--grammar", o->grammar,
                             "Constrain the output to this GBNF grammar file (llama.cpp syntax)")
                 ->check(CLI::ExistingFile)
                 ->excludes(js);
  cmd->add_flag("--json", o->json, "Constrain the output to one JSON object")
      ->excludes(js)
      ->excludes(gr);
  cmd->callback([o] { run(*o); });
}

}  // namespace flashrt::cli

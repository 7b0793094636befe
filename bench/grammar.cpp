// Constrained decoding cost per token with the Qwen3 vocabulary (151k tokens): a generation-like
// loop (tokens picked from the mask by a seeded RNG, biased towards closing so documents finish)
// over a JSON-schema grammar and the free json_object grammar. Reports the mask fill time per
// token (all, cold = computed, warm = from the mask cache), the hit rate, accept_token, and for a
// sample of the states met: the walk with warm transitions but no mask cache, and the fully
// uncached walk (a matcher copy per trie edge).
// Each grammar runs --repeats times from empty caches (the same documents each time); the last
// line per grammar gives the median over the repeats of the mean fill time, the figure to quote
// on a noisy machine.
// Usage: bench_grammar [--tokenizer PATH] [--docs N] [--seed S] [--repeats R]
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "engine/grammar.h"
#include "engine/grammar_matcher.h"
#include "engine/json_schema.h"
#include "engine/token_mask.h"
#include "tokenizer/tokenizer.h"

namespace {

using namespace flashrt;
using Clock = std::chrono::steady_clock;

double us_since(Clock::time_point t) {
  return std::chrono::duration<double, std::micro>(Clock::now() - t).count();
}

struct Summary {
  size_t n = 0;
  double median = 0, p90 = 0, max = 0, mean = 0;
};

Summary summarize(std::vector<double> v) {
  Summary s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  s.n = v.size();
  s.median = v[v.size() / 2];
  s.p90 = v[v.size() * 9 / 10];
  s.max = v.back();
  for (const double x : v) s.mean += x / static_cast<double>(v.size());
  return s;
}

void row(const std::string& what, const Summary& s) {
  fmt::print("  {:<34} {:>7} {:>10.1f} {:>10.1f} {:>10.1f} {:>10.1f}\n", what, s.n, s.median, s.p90,
             s.max, s.mean);
}

constexpr const char* kSchema = R"({
  "type": "object",
  "properties": {
    "name": {"type": "string", "maxLength": 40},
    "age": {"type": "integer", "minimum": 0, "maximum": 130},
    "email": {"type": "string"},
    "role": {"enum": ["admin", "user", "guest"]},
    "address": {"type": "object", "properties": {
      "street": {"type": "string"}, "city": {"type": "string"},
      "zip": {"type": "string", "minLength": 5, "maxLength": 5}},
      "required": ["city"]},
    "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 5},
    "scores": {"type": "array", "items": {"type": "number"}},
    "active": {"type": "boolean"},
    "manager": {"anyOf": [{"type": "string"}, {"type": "null"}]}
  },
  "required": ["name", "age", "role", "active"]
})";

constexpr const char* kCountedSchema = R"({
  "type": "object",
  "properties": {"code": {"type": "string", "minLength": 60, "maxLength": 60}},
  "required": ["code"]
})";

// Returns the mean fill time per token.
double run(const std::string& label, const std::string& gbnf, const Tokenizer& tok,
           TokenMasker& masker, int docs, uint64_t seed) {
  const auto grammar = Grammar::parse(gbnf);
  const std::vector<int32_t> ends = tok.stop_ids();
  masker.clear_cache();
  const uint64_t transitions_before = masker.stats().transitions;
  std::mt19937_64 rng(seed);
  std::vector<double> all, cold, warm, accept;
  std::vector<GrammarMatcher> sample;
  std::vector<uint64_t> bits;
  std::vector<int32_t> allowed, closing, plain;
  size_t tokens = 0, bytes = 0;
  int unfinished = 0;
  for (int d = 0; d < docs; ++d) {
    GrammarMatcher m(grammar);
    const int soft = 30 + static_cast<int>(rng() % 60);
    bool done = false;
    for (int step = 0; step < 2000 && !done; ++step) {
      const uint64_t hits = masker.stats().hits;
      const auto t0 = Clock::now();
      masker.fill(m, bits);
      const double us = us_since(t0);
      all.push_back(us);
      (masker.stats().hits > hits ? warm : cold).push_back(us);
      if (rng() % 8 == 0 && sample.size() < 40) sample.push_back(m);
      allowed.clear();
      closing.clear();
      plain.clear();
      bool can_end = false;
      for (size_t w = 0; w < bits.size(); ++w) {
        for (uint64_t x = bits[w]; x; x &= x - 1) {
          const auto id = static_cast<int32_t>(w * 64 + static_cast<size_t>(__builtin_ctzll(x)));
          if (std::find(ends.begin(), ends.end(), id) != ends.end()) {
            can_end = true;
            continue;
          }
          allowed.push_back(id);
          if (step <= soft) continue;
          const std::string_view t = tok.token_bytes(id);
          if (t.find_first_not_of("\"}]") == std::string_view::npos) closing.push_back(id);
          if (t.find_first_of("[{, \t\n") == std::string_view::npos &&
              std::all_of(t.begin(), t.end(), [](char c) { return c > 0x20 && c < 0x7F; }))
            plain.push_back(id);
        }
      }
      if (can_end && (allowed.empty() || step > soft || rng() % 32 == 0)) {
        done = true;
        break;
      }
      if (allowed.empty()) break;
      const auto& pool = step <= soft       ? allowed
                         : !closing.empty() ? closing
                         : !plain.empty()   ? plain
                                            : allowed;
      const int32_t id = pool[rng() % pool.size()];
      const auto t1 = Clock::now();
      if (!masker.accept_token(m, id)) fail("bench: the mask allowed a token the matcher refuses");
      accept.push_back(us_since(t1));
      ++tokens;
      bytes += tok.token_bytes(id).size();
    }
    unfinished += done ? 0 : 1;
  }
  // The same states without the mask cache: transitions warm (second fill), and none at all.
  TokenMasker::Options no_masks;
  no_masks.max_cached_masks = 0;
  TokenMasker dfa_only(tok, ends, no_masks);
  std::vector<double> walk, uncached;
  for (const GrammarMatcher& m : sample) {
    dfa_only.fill(m, bits);
    auto t0 = Clock::now();
    dfa_only.fill(m, bits);
    walk.push_back(us_since(t0));
    t0 = Clock::now();
    masker.fill_uncached(m, bits);
    uncached.push_back(us_since(t0));
  }
  const TokenMasker::Stats st = masker.stats();
  fmt::print("\n{}: {} documents, {} tokens ({:.1f} bytes/token), {} unfinished\n", label, docs,
             tokens, tokens ? double(bytes) / double(tokens) : 0.0, unfinished);
  fmt::print("  mask hit rate {:.1f}%, {} interned states, {} cached masks, {} transitions\n",
             all.empty() ? 0.0 : 100.0 * double(warm.size()) / double(all.size()), st.states,
             st.masks, st.transitions - transitions_before);
  fmt::print("  {:<34} {:>7} {:>10} {:>10} {:>10} {:>10}\n", "microseconds per token", "n",
             "median", "p90", "max", "mean");
  row("fill, all tokens", summarize(all));
  row("fill, warm (mask cache hit)", summarize(warm));
  row("fill, cold (computed)", summarize(cold));
  row("accept_token", summarize(accept));
  row("walk, transitions warm, no mask", summarize(walk));
  row("walk, uncached (matcher per edge)", summarize(uncached));
  return summarize(all).mean;
}

void repeat(int repeats, const std::string& label, const std::string& gbnf, const Tokenizer& tok,
            TokenMasker& masker, int docs, uint64_t seed) {
  std::vector<double> means;
  for (int r = 0; r < repeats; ++r) means.push_back(run(label, gbnf, tok, masker, docs, seed));
  const Summary s = summarize(means);
  fmt::print(
      "  => {}: mean fill per token, median of {} repeats {:.1f} us (min {:.1f}, max {:.1f})\n",
      label, repeats, s.median, means.empty() ? 0.0 : *std::min_element(means.begin(), means.end()),
      s.max);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Token mask cost per token for JSON grammars on the Qwen3 vocabulary"};
  const char* env = std::getenv("FLASHRT_SHARED");
  std::string tokenizer =
      (env && *env
           ? std::filesystem::path(env)
           : std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() / "shared") /
      "reference/qwen3-tokenizer";
  int docs = 20, repeats = 3;
  uint64_t seed = 7;
  app.add_option("--tokenizer", tokenizer, "tokenizer.json or its folder")->capture_default_str();
  app.add_option("--docs", docs, "documents per grammar")->capture_default_str();
  app.add_option("--seed", seed, "RNG seed")->capture_default_str();
  app.add_option("--repeats", repeats, "runs per grammar from empty caches")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    auto t0 = Clock::now();
    const Tokenizer tok = Tokenizer::from_hf_dir_or_file(tokenizer);
    const double load_ms = us_since(t0) / 1000;
    t0 = Clock::now();
    TokenMasker masker(tok, tok.stop_ids());
    fmt::print("vocabulary {} tokens: tokenizer {:.0f} ms, masker (trie) {:.0f} ms\n",
               tok.vocab_size(), load_ms, us_since(t0) / 1000);
    t0 = Clock::now();
    const std::string schema_gbnf = json_schema_to_gbnf(nlohmann::ordered_json::parse(kSchema));
    const auto g = Grammar::parse(schema_gbnf);
    fmt::print("schema -> GBNF -> grammar: {:.0f} us ({} rules)\n", us_since(t0), g->rule_count());
    repeat(repeats, "JSON schema (person record)", schema_gbnf, tok, masker, docs, seed);
    repeat(repeats, "json_object (free JSON)", json_object_gbnf(), tok, masker, docs, seed + 1);
    // Every character position of a counted string is a parse state of its own.
    repeat(repeats, "counted string (exactly 60 characters)",
           json_schema_to_gbnf(nlohmann::ordered_json::parse(kCountedSchema)), tok, masker, docs,
           seed + 2);
  } catch (const std::exception& e) {
    fmt::print(stderr, "bench_grammar: {}\n", e.what());
    return 1;
  }
  return 0;
}

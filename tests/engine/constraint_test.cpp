// Constrained generation end to end (engine/constraint.h) on the trained pycoder-hybrid-12m, a
// code model that knows nothing of these schemas: at temperature 1, over 100 seeds per schema,
// every output parses and validates (nested objects, enums, arrays with bounds, anyOf, $ref), and
// ends at the end-of-turn token; greedy too. A capsule taken mid-JSON restores and continues
// under the same constraint (re-derived from the tokens) exactly as the uninterrupted run.
#include <gtest/gtest.h>

#include "core/thread_pool.h"
#include "engine/constraint.h"
#include "engine/json_validate.h"
#include "engine/scheduler.h"
#include "engine/session.h"
#include "reference.h"
#include "tokenizer/gguf_vocab.h"

namespace flashrt::testing {
namespace {

using ojson = nlohmann::ordered_json;

// Thousands of small steps: under ctest -j beside other test processes a spinning two-thread pool
// loses most of its time slices, so these take one thread (as the speculative tests do; no effect
// once the pool exists, as in a whole-binary run).
bool one_thread() {
  ThreadPool::set_default_threads(1);
  return true;
}

struct Fixture {
  bool single = one_thread();
  std::unique_ptr<Backend> be = make_backend("cpu");
  std::unique_ptr<Model> model;
  Tokenizer tok;
  std::shared_ptr<TokenMasker> masker;
  std::vector<int32_t> prompt, stops;
  Fixture()
      : model(load_model(trained_model_dir("pycoder-hybrid-12m"), *be)),
        tok(load_tokenizer(trained_model_dir("pycoder-hybrid-12m"))),
        prompt(tok.encode("<|im_start|>user\nGive me the data as JSON.<|im_end|>\n"
                          "<|im_start|>assistant\n")),
        stops(tok.stop_ids()) {
    masker = make_token_masker(tok, stops);
  }
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

const std::vector<std::pair<std::string, std::string>>& schemas() {
  static const std::vector<std::pair<std::string, std::string>> s = {
      {"nested", R"({"type": "object", "properties": {
          "name": {"type": "string", "maxLength": 12},
          "owner": {"type": "object", "properties": {
              "id": {"type": "integer"}, "admin": {"type": "boolean"}},
            "required": ["id", "admin"]}},
        "required": ["name", "owner"]})"},
      {"enum-array", R"({"type": "object", "properties": {
          "level": {"enum": ["debug", "info", "warn", 3, null]},
          "tags": {"type": "array", "items": {"type": "string", "maxLength": 6},
                   "minItems": 2, "maxItems": 4}},
        "required": ["level", "tags"]})"},
      {"anyof-ref", R"({"$defs": {"point": {"type": "object", "properties": {
            "x": {"type": "number"}, "y": {"type": "number"}}, "required": ["x", "y"]}},
        "type": "object", "properties": {
          "shape": {"anyOf": [{"$ref": "#/$defs/point"},
                              {"type": "array", "items": {"$ref": "#/$defs/point"},
                               "maxItems": 2}]},
          "label": {"anyOf": [{"type": "string", "maxLength": 8}, {"type": "null"}]}},
        "required": ["shape", "label"]})"},
  };
  return s;
}

// Generates under the schema; returns the text before the end token and whether one came.
std::pair<std::string, bool> generate(Session& s, const std::shared_ptr<const ConstraintSpec>& spec,
                                      const SamplerParams& p, int max_new) {
  Fixture& f = fixture();
  OutputConstraint c(spec, f.masker);
  const auto r = s.generate(max_new, p, f.stops, nullptr, &c);
  std::vector<int32_t> ids = r.tokens;
  const bool ended = r.finish == FinishReason::kStop;
  if (ended) ids.pop_back();
  return {f.tok.decode(ids), ended};
}

// 100 seeds per schema as one batch of the scheduler (8 slots, continuous batching): each run
// keeps its own constraint state in the shared steps. Two of them are checked against the same
// run on a plain session, token for token.
TEST(Constraint, EverySampledOutputValidates) {
  Fixture& f = fixture();
  SamplerParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  std::vector<std::vector<std::vector<int32_t>>> solo;  // [schema][seed 0, 1]
  for (const auto& sch : schemas()) {
    const auto spec = constraint_from_json_schema(ojson::parse(sch.second));
    solo.emplace_back();
    for (int seed = 0; seed < 2; ++seed) {
      Session s(*f.model, *f.be);
      s.append(f.prompt);
      s.seed(static_cast<uint64_t>(seed));
      OutputConstraint c(spec, f.masker);
      solo.back().push_back(s.generate(400, p, f.stops, nullptr, &c).tokens);
    }
  }
  SchedulerOptions opt;
  opt.slots = 8;
  opt.session.max_ctx = 512;
  Scheduler sched(*f.model, *f.be, f.tok, opt);
  for (size_t k = 0; k < schemas().size(); ++k) {
    const auto& [name, text] = schemas()[k];
    SCOPED_TRACE(name);
    const ojson schema = ojson::parse(text);
    const auto spec = constraint_from_json_schema(schema);
    std::vector<std::shared_ptr<TokenStream>> streams;
    for (int seed = 0; seed < 100; ++seed) {
      RunSpec run;
      run.prefill = f.prompt;
      run.use_cache = true;
      run.max_tokens = 400;
      run.params = p;
      run.seed = static_cast<uint64_t>(seed);
      run.stop_ids = f.stops;
      run.constraint = spec;
      streams.push_back(sched.submit(std::move(run)));
    }
    for (int seed = 0; seed < 100; ++seed) {
      const RunResult r = streams[static_cast<size_t>(seed)]->result();
      ASSERT_EQ(r.finish_reason, "stop")
          << "seed " << seed << ": no end within 400 tokens: " << r.text;
      const auto doc = ojson::parse(r.text, nullptr, false);
      ASSERT_FALSE(doc.is_discarded()) << "seed " << seed << ": " << r.text;
      EXPECT_EQ(test::validate(doc, schema), "") << "seed " << seed << ": " << r.text;
      if (seed < 2) {
        EXPECT_EQ(r.ids, solo[k][static_cast<size_t>(seed)]) << "seed " << seed;
      }
    }
  }
}

// Greedy, on a session.
TEST(Constraint, GreedyOutputValidates) {
  Fixture& f = fixture();
  for (const auto& [name, text] : schemas()) {
    SCOPED_TRACE(name);
    Session s(*f.model, *f.be);
    s.append(f.prompt);
    const ojson schema = ojson::parse(text);
    const auto [out, ended] =
        generate(s, constraint_from_json_schema(schema), SamplerParams::greedy(), 400);
    EXPECT_TRUE(ended) << out;
    EXPECT_EQ(test::validate(ojson::parse(out), schema), "") << out;
  }
}

TEST(Constraint, FreeJsonObjectAndGrammar) {
  Fixture& f = fixture();
  Session s(*f.model, *f.be);
  s.append(f.prompt);
  const Capsule start = s.snapshot();
  SamplerParams p;
  p.temperature = 1.0f;
  for (int seed = 0; seed < 20; ++seed) {
    s.restore(start);
    s.seed(static_cast<uint64_t>(seed));
    const auto [out, ended] = generate(s, constraint_json_object(), p, 300);
    if (!ended) continue;  // free JSON has no bound on its length; an ended one must parse
    EXPECT_TRUE(nlohmann::json::parse(out, nullptr, false).is_object()) << out;
  }
  const auto g = constraint_from_gbnf("root ::= \"def \" [a-z_]{1,10} \"(\" [a-z]{0,3} \"):\"");
  for (int seed = 0; seed < 20; ++seed) {
    s.restore(start);
    s.seed(static_cast<uint64_t>(seed));
    const auto [out, ended] = generate(s, g, p, 40);
    EXPECT_TRUE(ended) << out;
    EXPECT_TRUE(out.starts_with("def ") && out.ends_with("):")) << out;
  }
}

TEST(Constraint, CapsuleMidJsonContinuesUnderTheSameConstraint) {
  Fixture& f = fixture();
  const auto spec = constraint_from_json_schema(ojson::parse(schemas()[0].second));
  for (const bool greedy : {true, false}) {
    SCOPED_TRACE(greedy);
    SamplerParams p = greedy ? SamplerParams::greedy() : SamplerParams{};
    Session a(*f.model, *f.be);
    a.append(f.prompt);
    a.seed(7);
    const int64_t start = a.pos();
    // The whole run, uninterrupted.
    OutputConstraint whole(spec, f.masker);
    const Capsule before = a.snapshot();
    const auto full = a.generate(300, p, f.stops, nullptr, &whole);
    // The same run cut after 9 tokens, snapshotted, restored into another session, resumed with a
    // fresh constraint that replays the tokens since `start`.
    a.restore(before);
    OutputConstraint first(spec, f.masker);
    const auto head = a.generate(9, p, f.stops, nullptr, &first);
    ASSERT_EQ(head.tokens.size(), 9u);
    const Capsule mid = a.snapshot();
    Session b(*f.model, *f.be);
    b.restore(mid);
    const std::vector<int32_t> held = b.tokens();
    OutputConstraint resumed(spec, f.masker);
    resumed.replay(std::span<const int32_t>(held).subspan(static_cast<size_t>(start)));
    const auto tail = b.generate(300 - 9, p, f.stops, nullptr, &resumed);
    std::vector<int32_t> joined = head.tokens;
    joined.insert(joined.end(), tail.tokens.begin(), tail.tokens.end());
    EXPECT_EQ(joined, full.tokens);
  }
}

}  // namespace
}  // namespace flashrt::testing

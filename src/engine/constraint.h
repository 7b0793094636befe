// A run's output constraint: JSON Schema, any JSON object, or a GBNF grammar. Before each token
// is sampled the logits are masked to the tokens that keep the output a valid prefix of the
// grammar (before penalties, bias, temperature, top-k/top-p/min-p), and the token drawn advances
// the grammar's state. End-of-turn tokens are allowed exactly when the output is complete, so a
// constrained run ends with a whole document.
//
// The state is re-derivable from the tokens, so it needs no region of its own: it is the matcher
// after the bytes of the tokens generated since the constraint began. A capsule holds those
// tokens (meta.tokens); a run that resumes it continues under the same constraint by replaying
// them (OutputConstraint::replay) before it samples.
#pragma once
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/grammar.h"
#include "engine/grammar_matcher.h"
#include "engine/token_mask.h"

namespace flashrt {

class Tokenizer;

// A compiled constraint, shared by the runs (and continuations) that use it.
struct ConstraintSpec {
  std::shared_ptr<const Grammar> grammar;
  std::string kind;  // "json_schema", "json_object", "grammar": what the user gave
};
// Compilers. Errors (flashrt::Error) say what is wrong or unsupported, with the schema's path or
// the grammar's line and column.
std::shared_ptr<const ConstraintSpec> constraint_from_gbnf(std::string_view gbnf);
std::shared_ptr<const ConstraintSpec> constraint_from_json_schema(
    const nlohmann::ordered_json& schema);
std::shared_ptr<const ConstraintSpec> constraint_json_object();

// The per-vocabulary part: the token trie and mask caches, built once per tokenizer and shared by
// every constrained run of it (thread-safe). `end_ids` end a run (allowed once the output is
// complete): the tokenizer's end-of-turn ids plus the model's eos ids.
std::shared_ptr<TokenMasker> make_token_masker(const Tokenizer& tok,
                                               std::span<const int32_t> end_ids);

class OutputConstraint {
 public:
  OutputConstraint(std::shared_ptr<const ConstraintSpec> spec, std::shared_ptr<TokenMasker> masker);

  // Sets the logits of every token the grammar forbids here to -inf.
  void mask(std::span<float> logits);
  bool allows(int32_t id) const;
  // Advances past a token the mask allowed (an end token leaves the state as it is). Throws
  // flashrt::Error for a token the grammar forbids.
  void accept(int32_t id);
  // A copy at the same state (speculative verification checks each draft on its own copy).
  OutputConstraint fork() const { return *this; }
  // Advances past tokens generated earlier under this constraint (a resumed capsule).
  void replay(std::span<const int32_t> ids);
  // The output so far is a complete sentence of the grammar.
  bool complete() const;

 private:
  std::shared_ptr<const ConstraintSpec> spec_;
  std::shared_ptr<TokenMasker> masker_;
  GrammarMatcher matcher_;
  std::vector<uint64_t> bits_;  // the last mask (scratch, reused)
};

}  // namespace flashrt

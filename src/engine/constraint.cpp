#include "engine/constraint.h"

#include "core/error.h"
#include "engine/json_schema.h"
#include "tokenizer/tokenizer.h"

namespace flashrt {

namespace {

std::shared_ptr<const ConstraintSpec> spec_of(std::string_view gbnf, std::string kind) {
  auto s = std::make_shared<ConstraintSpec>();
  s->grammar = Grammar::parse(gbnf);
  s->kind = std::move(kind);
  return s;
}

}  // namespace

std::shared_ptr<const ConstraintSpec> constraint_from_gbnf(std::string_view gbnf) {
  return spec_of(gbnf, "grammar");
}

std::shared_ptr<const ConstraintSpec> constraint_from_json_schema(
    const nlohmann::ordered_json& schema) {
  return spec_of(json_schema_to_gbnf(schema), "json_schema");
}

std::shared_ptr<const ConstraintSpec> constraint_json_object() {
  // One grammar for every json_object request, so they share its mask cache.
  static const std::shared_ptr<const ConstraintSpec> s = spec_of(json_object_gbnf(), "json_object");
  return s;
}

std::shared_ptr<TokenMasker> make_token_masker(const Tokenizer& tok,
                                               std::span<const int32_t> end_ids) {
  return std::make_shared<TokenMasker>(tok, std::vector<int32_t>(end_ids.begin(), end_ids.end()));
}

OutputConstraint::OutputConstraint(std::shared_ptr<const ConstraintSpec> spec,
                                   std::shared_ptr<TokenMasker> masker)
    : spec_(std::move(spec)), masker_(std::move(masker)), matcher_(spec_->grammar) {}

void OutputConstraint::mask(std::span<float> logits) {
  masker_->fill(matcher_, bits_);
  bool any = false;
  for (uint64_t w : bits_) any = any || w != 0;
  // Cannot happen for a grammar that parsed (every state can end or continue by a byte, and the
  // vocabulary has every byte), unless the vocabulary lacks tokens the grammar needs.
  FLASHRT_CHECK(any, "the {} allows no token of this vocabulary here", spec_->kind);
  TokenMasker::apply(logits, bits_);
}

bool OutputConstraint::allows(int32_t id) const {
  GrammarMatcher m = matcher_;
  return masker_->accept_token(m, id);
}

void OutputConstraint::accept(int32_t id) {
  FLASHRT_CHECK(masker_->accept_token(matcher_, id), "internal: token {} breaks the {}", id,
                spec_->kind);
}

void OutputConstraint::replay(std::span<const int32_t> ids) {
  for (int32_t id : ids)
    FLASHRT_CHECK(masker_->accept_token(matcher_, id),
                  "the tokens to resume do not follow the {} (token {}): was the capsule taken "
                  "under another constraint, or from another start?",
                  spec_->kind, id);
}

bool OutputConstraint::complete() const {
  return matcher_.can_end();
}

}  // namespace flashrt

// GBNF grammars (llama.cpp's syntax) compiled to a flat form for constrained decoding.
//
//   root   ::= "{" ws pair ("," ws pair)* "}"   # rules, alternatives with |, sequences
//   pair   ::= [a-z_]+ ws ":" ws ( "\"" [^"\\]* "\"" | [0-9]{1,6} | . )
//   ws     ::= [ \t\n]{0,20}
//
// Literals take \n \t \r \\ \" \' \[ \] \- \^ \/ \xHH \uHHHH \UHHHHHHHH; classes [a-z], [^...];
// `.` is any code point; ( ) groups; * + ? {m} {m,} {m,n} repeat the item before them (a whole
// literal, a class, a rule or a group). Newlines are plain whitespace: a rule runs until the next
// `name ::=`. Matching is on Unicode code points of UTF-8 text.
//
// Compiled form (as llama.cpp's): every rule is a run of elements, alternatives separated by kAlt
// and closed by kEnd; an element is a set of code point ranges or a reference to a rule.
// Repetitions and groups become helper rules. Grammars that would make the matcher loop (left
// recursion, also through rules that can match nothing) or never finish are refused.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace flashrt {

struct CharRange {
  uint32_t lo, hi;  // inclusive code points
};

struct GrammarElement {
  enum Kind : uint8_t { kEnd, kAlt, kRuleRef, kChars };
  Kind kind;
  uint32_t a = 0;  // kRuleRef: the rule; kChars: first index into Grammar::ranges()
  uint32_t n = 0;  // kChars: how many ranges (sorted, disjoint; negated classes are complemented)
};

class Grammar {
 public:
  // Parses and checks GBNF text; flashrt::Error names line:column and what is wrong.
  static std::shared_ptr<const Grammar> parse(std::string_view gbnf);

  uint32_t root() const { return root_; }
  size_t rule_count() const { return rule_start_.size(); }
  const std::string& rule_name(uint32_t rule) const { return names_[rule]; }
  // Index into elements() of the rule's first element.
  uint32_t rule_start(uint32_t rule) const { return rule_start_[rule]; }
  // Where each alternative of `rule` starts (index into elements()).
  std::span<const uint32_t> alternatives(uint32_t rule) const {
    return {alts_.data() + alt_offsets_[rule], alt_offsets_[rule + 1] - alt_offsets_[rule]};
  }
  std::span<const GrammarElement> elements() const { return elements_; }
  std::span<const CharRange> ranges(const GrammarElement& e) const { return {&ranges_[e.a], e.n}; }

  // Whether a kChars element takes code point `cp` / some code point of [lo, hi].
  bool matches(const GrammarElement& e, uint32_t cp) const;
  bool intersects(const GrammarElement& e, uint32_t lo, uint32_t hi) const;
  // Code points split into classes that every kChars element (and UTF-8's own limits: 0x80,
  // 0x800, 0x10000, the surrogates) takes whole or not at all: a half-read character whose
  // remaining range lies in one class has one possible future, which keeps matcher states few.
  uint32_t char_class(uint32_t cp) const;
  uint32_t class_start(uint32_t cls) const { return class_starts_[cls]; }
  // Counted repetition: x{m,n} compiles to a chain of rules, one per count of copies left. A
  // position with more than `horizon` copies left maps to the same position in the rule with
  // `horizon` left, which accepts the same inputs of up to `horizon` bytes (every copy takes at
  // least one byte; chains of items that can match nothing are left alone). Other positions map
  // to themselves. Token masks over short tokens use this to share one mask between counters.
  uint32_t clamp_counter(uint32_t pos, uint32_t horizon) const;
  bool has_counters() const { return !chains_.empty(); }
  // True for kEnd and kAlt: the end of an alternative.
  static bool ends_sequence(const GrammarElement& e) { return e.kind <= GrammarElement::kAlt; }

  // The compiled grammar as GBNF (helper rules included), for debugging.
  std::string to_gbnf() const;
  // Hash of the compiled form; same_as compares it exactly (caches share work between equal
  // grammars compiled separately, e.g. one JSON schema sent by many requests).
  uint64_t fingerprint() const { return fingerprint_; }
  bool same_as(const Grammar& other) const;

 private:
  friend class GrammarBuilder;
  Grammar() = default;

  std::vector<GrammarElement> elements_;
  std::vector<CharRange> ranges_;
  std::vector<uint32_t> rule_start_;
  std::vector<uint32_t> alts_, alt_offsets_;
  std::vector<std::string> names_;
  std::vector<uint32_t> class_starts_;
  // Per rule: its chain and count left (chain kNoChain: not a counter); per chain: its rules by
  // count left - 1; per element: its rule.
  static constexpr uint32_t kNoChain = 0xFFFFFFFFu;
  struct ChainLink {
    uint32_t chain = kNoChain, left = 0;
  };
  std::vector<ChainLink> links_;
  std::vector<std::vector<uint32_t>> chains_;
  std::vector<uint32_t> element_rule_;
  uint32_t root_ = 0;
  uint64_t fingerprint_ = 0;
};

}  // namespace flashrt

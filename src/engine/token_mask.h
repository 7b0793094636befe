// Token masks for constrained decoding: which tokens of a vocabulary keep the output a valid
// prefix of a grammar. Built once per vocabulary (a byte trie of every token); a fill walks the
// trie against the matcher, pruning a subtree as soon as its prefix is refused.
//
// The walk runs on interned parse states: each distinct matcher state reached gets an id and a
// 256-entry byte transition table filled on first use, so a trie edge costs a table lookup once a
// grammar is warm (a lazily built DFA over the grammar's stack sets). On top, whole masks are
// memoized per state in a bounded LRU, so the steady state of JSON generation is one lookup and a
// copy. Tokens of up to 16 bytes are walked from the state's horizon view, so positions of a
// counter (a maxLength string, a run of copies) far from its limit share one such walk; only the
// longer tokens are walked per state. A state's view drops the context below the construct it is
// in, so one string is walked once wherever it sits, and a subtree of plain bytes under a state
// that takes any run of them (a string body) is accepted without walking it. Caches are per grammar
// (equal grammars compiled separately share one), bounded, and guarded by one mutex: a TokenMasker
// may be shared by threads, whose fills then take turns.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "engine/grammar_matcher.h"

namespace flashrt {

class Tokenizer;

class TokenMasker {
 public:
  struct Options {
    size_t max_cached_masks = 1024;  // per grammar (a mask is vocab/8 bytes; 0: no mask cache)
    size_t max_states = 16384;       // interned states per grammar before its caches are reset
    size_t max_grammars = 8;         // grammars with caches (least recently used dropped)
  };
  struct Stats {
    uint64_t fills = 0, hits = 0;  // fill() calls; of those, answered from the mask cache
    uint64_t transitions = 0;      // byte transitions computed by the matcher (cold work)
    size_t states = 0, masks = 0, grammars = 0;  // what the caches hold now
    size_t short_masks = 0;  // of the masks: short-token masks kept by horizon view
  };

  // Control, unused and unknown tokens are never allowed; the end-of-generation ids are allowed
  // exactly when the matcher can end. `end_ids` usually is tokenizer.stop_ids().
  TokenMasker(const Tokenizer& tokenizer, std::vector<int32_t> end_ids, Options options);
  TokenMasker(const Tokenizer& tokenizer, std::vector<int32_t> end_ids)
      : TokenMasker(tokenizer, std::move(end_ids), Options{}) {}
  // A plain vocabulary: token bytes by id, the special ids (never allowed) and the end ids.
  TokenMasker(std::vector<std::string> token_bytes, const std::vector<int32_t>& special_ids,
              std::vector<int32_t> end_ids, Options options);
  TokenMasker(std::vector<std::string> token_bytes, const std::vector<int32_t>& special_ids,
              std::vector<int32_t> end_ids)
      : TokenMasker(std::move(token_bytes), special_ids, std::move(end_ids), Options{}) {}
  ~TokenMasker();
  TokenMasker(const TokenMasker&) = delete;
  TokenMasker& operator=(const TokenMasker&) = delete;

  int32_t vocab_size() const;
  size_t mask_words() const { return (static_cast<size_t>(vocab_size()) + 63) / 64; }

  // bits (resized to mask_words()): bit i set iff token i may come next.
  void fill(const GrammarMatcher& matcher, std::vector<uint64_t>& bits);
  // The same mask without any cache: the trie walked with a copy of the matcher state per edge
  // (the reference the cached path is tested against, and the cold baseline of the benchmark).
  void fill_uncached(const GrammarMatcher& matcher, std::vector<uint64_t>& bits) const;
  // Advances the matcher by a token through the interned states (faster than accept_bytes once
  // warm). An end id: returns can_end() and leaves the matcher as it is. A token the mask would
  // refuse: false, matcher unchanged.
  bool accept_token(GrammarMatcher& matcher, int32_t id);

  // Sets the logits of disallowed tokens (and of ids past the mask) to -infinity.
  static void apply(std::span<float> logits, std::span<const uint64_t> bits);
  static bool allowed(std::span<const uint64_t> bits, int32_t id) {
    return id >= 0 && static_cast<size_t>(id) / 64 < bits.size() &&
           (bits[static_cast<size_t>(id) / 64] >> (id % 64) & 1) != 0;
  }

  Stats stats() const;
  void clear_cache();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace flashrt

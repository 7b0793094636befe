// Added tokens (special and user-defined): they are found in the text before pre-tokenization and
// become one id each, whatever BPE would have made of their characters.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace flashrt {

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = false;      // a control token: matched only when parsing special tokens
  bool lstrip = false;       // swallows the white space on its left
  bool rstrip = false;       // swallows the white space on its right
  bool single_word = false;  // matches only when not inside a word
  bool normalized = false;   // matched in the normalised (NFC) text rather than the raw text
};

// Finds the leftmost, then longest, occurrence of a set of added tokens, as HF's added vocabulary
// does with its Aho-Corasick automaton.
class AddedTokenMatcher {
 public:
  AddedTokenMatcher() = default;
  explicit AddedTokenMatcher(std::vector<AddedToken> tokens);

  struct Match {
    size_t begin, end;  // the span the token replaces, stripped white space included
    int32_t id;
  };
  // The first match in text[from, ...). Special tokens take part only if `parse_special`.
  std::optional<Match> find(std::string_view text, size_t from, bool parse_special) const;
  bool empty() const { return tokens_.empty(); }

 private:
  std::vector<AddedToken> tokens_;                        // longest first
  std::array<std::vector<uint32_t>, 256> by_first_byte_;  // indices into tokens_
};

}  // namespace flashrt

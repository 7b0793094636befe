// Internal: what a Tokenizer holds, and the common last step of both loaders (tokenizer.json and
// GGUF-style data), which hand over their pieces as TokenizerParts.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tokenizer/added_tokens.h"
#include "tokenizer/bpe.h"
#include "tokenizer/pretokenize.h"
#include "tokenizer/tokenizer.h"

namespace flashrt {

struct TokenizerParts {
  std::string origin;  // names the source in error messages
  TokenIndex vocab;    // model vocabulary: byte-level spelling -> id
  std::vector<std::pair<std::string_view, std::string_view>> merges;  // rank order
  bool ignore_merges = false;
  std::vector<AddedToken> added;
  std::string split_regex;
  bool nfc = true;
  bool add_prefix_space = false;
  std::string pre_name;  // llama.cpp name; derived from the regex when empty
  std::optional<int32_t> bos, eos, pad;
  std::string chat_template;
  int32_t min_vocab_size = 0;  // GGUF vocabularies may end in unused padding slots
};

struct Tokenizer::State {
  std::string origin;
  std::vector<std::string> tokens;  // id -> spelling ("" for an unused slot)
  std::vector<std::string> bytes;   // id -> raw bytes it decodes to
  std::vector<TokenType> types;
  TokenIndex added_index;  // added token content -> id
  BpeModel bpe;
  AddedTokenMatcher raw_added;         // matched in the text as given
  AddedTokenMatcher normalized_added;  // matched after NFC
  SplitRegex regex;
  bool nfc = true;
  bool add_prefix_space = false;
  std::string pre_name;
  std::optional<int32_t> bos, eos, pad;
  std::string chat_template;

  // Everything between two raw added tokens: normalise, match normalised added tokens, split and
  // run BPE.
  void encode_segment(std::string_view segment, bool parse_special, std::vector<int32_t>& ids,
                      std::vector<std::pair<uint32_t, uint32_t>>& scratch) const;
  void encode_words(std::string_view text, std::vector<int32_t>& ids,
                    std::vector<std::pair<uint32_t, uint32_t>>& scratch) const;
};

std::shared_ptr<const Tokenizer::State> build_tokenizer_state(TokenizerParts parts);

}  // namespace flashrt

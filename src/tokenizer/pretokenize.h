// Pre-tokenization: NFC normalisation (utf8proc) and the split regex (PCRE2) that cuts text into
// the "words" BPE works on. Hugging Face runs the regex with Oniguruma; the differences that matter
// are handled when the pattern is compiled (see SplitRegex).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace flashrt {

// The split regex of Qwen2 / Qwen2.5 / Qwen3 (and the pycoder models): llama.cpp pre "qwen2".
inline constexpr std::string_view kQwen2SplitRegex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*)"
    R"(|\s*[\r\n]+|\s+(?!\S)|\s+)";
// Qwen3.5's: the same shape with combining marks (\p{M}) kept with letters (llama.cpp "qwen35").
inline constexpr std::string_view kQwen35SplitRegex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N})"
    R"(| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// GPT-2's, used by a ByteLevel pre-tokenizer with use_regex = true.
inline constexpr std::string_view kGpt2SplitRegex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// Unicode NFC of valid UTF-8 text. Text made only of code points below U+0300 is returned as is
// (nothing there composes or decomposes), which is most text.
std::string nfc(std::string_view text);

// A compiled split regex with Hugging Face's "Isolated" behaviour: the matches and the gaps
// between them all become pieces, in order.
class SplitRegex {
 public:
  SplitRegex() = default;
  // Throws flashrt::Error naming `origin` when PCRE2 rejects the pattern.
  SplitRegex(std::string pattern, std::string_view origin);

  const std::string& pattern() const { return pattern_; }
  bool empty() const { return !code_; }

  // Appends the [begin, end) byte ranges of the pieces of `text` (valid UTF-8) to `pieces`.
  void split(std::string_view text, std::vector<std::pair<uint32_t, uint32_t>>& pieces) const;

 private:
  std::string pattern_;
  std::shared_ptr<void> code_;  // pcre2_code_8, freed with pcre2_code_free_8
};

// Rewrites \s and \S into Unicode White_Space classes: PCRE2's \s also matches U+180E, which
// Oniguruma (and hence HF tokenizers) and Rust do not. Exposed for tests.
std::string white_space_to_explicit_class(std::string_view pattern);

}  // namespace flashrt

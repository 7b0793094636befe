// UTF-8 helpers for the tokenizer: strict validation (the byte offset of the first bad byte is
// part of the error a user sees) and lossy repair with the same replacement rule as Rust's
// String::from_utf8_lossy, which is what Hugging Face tokenizers' decode returns.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace flashrt::utf8 {

// Offset of the first byte that does not belong to a well-formed UTF-8 sequence, or npos.
size_t find_invalid(std::string_view s);
inline bool is_valid(std::string_view s) {
  return find_invalid(s) == std::string_view::npos;
}

// Decodes the code point at s[i] and advances i. `s` must be valid UTF-8 from i on.
char32_t next(std::string_view s, size_t& i);
// Decodes the code point that ends at s[end) (valid UTF-8 assumed); `begin` receives its start.
char32_t prev(std::string_view s, size_t end, size_t& begin);
void append(std::string& out, char32_t cp);

// Appends `in` to `out`, replacing every maximal ill-formed subsequence by U+FFFD. With
// `final == false` an incomplete but so far well-formed sequence at the end is left unconsumed
// (it may be completed by bytes that come later). Returns the number of bytes of `in` consumed.
size_t append_lossy(std::string& out, std::string_view in, bool final);

// Unicode White_Space (what Rust's char::is_whitespace and Oniguruma's \s accept).
bool is_white_space(char32_t cp);

}  // namespace flashrt::utf8

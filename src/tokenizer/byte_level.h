// GPT-2's byte-level alphabet: every byte is mapped to a printable code point (printable ASCII and
// Latin-1 map to themselves, the rest to U+0100..U+0143), so that any byte string becomes a
// string of "visible" characters a BPE vocabulary can hold. Vocabulary strings are in this form.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace flashrt::byte_level {

char32_t byte_to_codepoint(uint8_t b);
// The UTF-8 spelling of byte_to_codepoint(b).
std::string_view byte_to_utf8(uint8_t b);
// Maps raw bytes to their byte-level spelling ("hi there" -> "hiĠthere").
std::string encode(std::string_view bytes);
// Maps a byte-level spelling back to raw bytes; nullopt when a character is outside the alphabet
// (then the token is not byte-level text and callers use it verbatim, as HF's decoder does).
std::optional<std::string> decode(std::string_view token);

}  // namespace flashrt::byte_level

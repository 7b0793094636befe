#include "tokenizer/byte_level.h"

#include <array>

#include "tokenizer/utf8.h"

namespace flashrt::byte_level {
namespace {

struct Tables {
  std::array<char32_t, 256> to_cp{};
  std::array<std::string, 256> to_utf8;
  std::array<int16_t, 324> from_cp{};  // code point (< 324) -> byte, -1 if not in the alphabet

  Tables() {
    from_cp.fill(-1);
    // Bytes that are printable keep their code point; the others get 256, 257, ... in order.
    auto printable = [](int b) {
      return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    };
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const char32_t cp =
          printable(b) ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + n++);
      to_cp[b] = cp;
      utf8::append(to_utf8[b], cp);
      from_cp[cp] = static_cast<int16_t>(b);
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

char32_t byte_to_codepoint(uint8_t b) {
  return tables().to_cp[b];
}

std::string_view byte_to_utf8(uint8_t b) {
  return tables().to_utf8[b];
}

std::string encode(std::string_view bytes) {
  const Tables& t = tables();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out.append(t.to_utf8[static_cast<uint8_t>(c)]);
  return out;
}

std::optional<std::string> decode(std::string_view token) {
  const Tables& t = tables();
  if (!utf8::is_valid(token)) return std::nullopt;
  std::string out;
  out.reserve(token.size());
  size_t i = 0;
  while (i < token.size()) {
    const char32_t cp = utf8::next(token, i);
    if (cp >= t.from_cp.size() || t.from_cp[cp] < 0) return std::nullopt;
    out.push_back(static_cast<char>(t.from_cp[cp]));
  }
  return out;
}

}  // namespace flashrt::byte_level

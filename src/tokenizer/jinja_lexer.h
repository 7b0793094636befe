// Splits a chat template into tokens as jinja2's lexer does, with the whitespace handling of the
// environment transformers uses applied here: trim_blocks, lstrip_blocks, `-`/`+` markers on
// tags, {# comments #} and {% raw %} dropped into data, newlines normalized to \n and one trailing
// newline removed (keep_trailing_newline=False).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace flashrt::jinja {

struct Token {
  enum class Type : uint8_t {
    Data,
    VarBegin,
    VarEnd,
    BlockBegin,
    BlockEnd,
    Name,
    String,
    Int,
    Float,
    Op,
    Eof
  };
  Type type;
  std::string text;  // data, name, operator, or a string literal's value
  int64_t ival = 0;
  double fval = 0;
  int line = 1, col = 1;
};

std::vector<Token> lex(std::string_view source);

// flashrt::Error "chat template line L, column C: message".
[[noreturn]] void syntax_error(int line, int col, const std::string& message);

}  // namespace flashrt::jinja

#include "tokenizer/jinja_lexer.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "core/error.h"
#include "tokenizer/jinja_text.h"

namespace flashrt::jinja {

void syntax_error(int line, int col, const std::string& message) {
  fail("chat template line {}, column {}: {}", line, col, message);
}

namespace {

bool ascii_space(char c) {
  return c == ' ' || (c >= '\t' && c <= '\r');
}
bool digit(char c) {
  return c >= '0' && c <= '9';
}
bool name_start(char c) {
  return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
}
bool name_char(char c) {
  return name_start(c) || c == '_' || digit(c);
}

// Python's str.isspace() over a UTF-8 string.
bool all_space(std::string_view s) {
  for (char32_t c : text::decode(s))
    if (!text::is_space(c)) return false;
  return true;
}

class Lexer {
 public:
  explicit Lexer(std::string_view source) {
    // jinja2 splits the source on \r\n, \r and \n and joins the lines with \n, dropping the last
    // line when it is empty: one trailing newline goes.
    src_.reserve(source.size());
    for (size_t k = 0; k < source.size(); ++k) {
      if (source[k] == '\r') {
        if (k + 1 < source.size() && source[k + 1] == '\n') ++k;
        src_.push_back('\n');
      } else {
        src_.push_back(source[k]);
      }
    }
    if (!src_.empty() && src_.back() == '\n') src_.pop_back();
    line_starts_.push_back(0);
    for (size_t k = 0; k < src_.size(); ++k)
      if (src_[k] == '\n') line_starts_.push_back(k + 1);
  }

  std::vector<Token> run() {
    while (pos_ < src_.size()) {
      const size_t start = find_tag(pos_);
      if (start == std::string::npos) {
        emit_data(pos_, src_.substr(pos_));
        break;
      }
      const char kind = src_[start + 1];
      size_t p = start + 2;
      char sign = 0;
      if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) sign = src_[p++];
      size_t raw_body = 0;
      const bool raw = kind == '%' && raw_begin(start, &raw_body);
      emit_data(pos_,
                strip_before(std::string_view(src_).substr(pos_, start - pos_), sign, kind != '{'));
      if (raw) {
        lex_raw(start, raw_body);
      } else if (kind == '#') {
        lex_comment(start, p);
      } else {
        lex_tag(start, p, kind == '%');
      }
    }
    Token eof{Token::Type::Eof, "", 0, 0, 0, 0};
    locate(src_.size(), &eof);
    out_.push_back(std::move(eof));
    return std::move(out_);
  }

 private:
  void locate(size_t at, Token* t) const {
    const auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), at) - 1;
    t->line = static_cast<int>(it - line_starts_.begin()) + 1;
    t->col = static_cast<int>(at - *it) + 1;
  }

  [[noreturn]] void error_at(size_t at, const std::string& message) const {
    Token t;
    locate(at, &t);
    syntax_error(t.line, t.col, message);
  }

  size_t find_tag(size_t from) const {
    for (size_t k = src_.find('{', from); k != std::string::npos; k = src_.find('{', k + 1))
      if (k + 1 < src_.size() && (src_[k + 1] == '{' || src_[k + 1] == '%' || src_[k + 1] == '#'))
        return k;
    return std::string::npos;
  }

  bool starts(size_t at, std::string_view s) const { return src_.compare(at, s.size(), s) == 0; }

  size_t skip_space(size_t at) const {
    while (at < src_.size() && ascii_space(src_[at])) ++at;
    return at;
  }

  // Past the whitespace `\s*` takes after a `-%}`: Python's \s, so Unicode spaces too.
  size_t skip_py_space(size_t at) const {
    const size_t rest = src_.size() - at;
    const std::string stripped =
        text::strip(std::string_view(src_).substr(at), nullptr, true, false);
    return at + (rest - stripped.size());
  }

  void set_line_starting(size_t end) { line_starting_ = end > 0 && src_[end - 1] == '\n'; }

  // The whitespace rules for the data before a tag: `-` strips all of it; otherwise, for blocks
  // and comments (lstrip_blocks), the spaces between the line start and the tag go.
  std::string_view strip_before(std::string_view text, char sign, bool block) const {
    if (sign == '-') {
      size_t e = text.size();
      const std::string stripped = text::strip(text, nullptr, false, true);
      e = stripped.size();
      return text.substr(0, e);
    }
    if (sign != '+' && block) {
      const size_t nl = text.rfind('\n');
      const size_t l_pos = nl == std::string_view::npos ? 0 : nl + 1;
      if ((l_pos > 0 || line_starting_) && l_pos < text.size() && all_space(text.substr(l_pos)))
        return text.substr(0, l_pos);
    }
    return text;
  }

  void emit_data(size_t at, std::string_view text) {
    if (text.empty()) return;
    Token t{Token::Type::Data, std::string(text), 0, 0, 0, 0};
    locate(at, &t);
    out_.push_back(std::move(t));
  }

  void push(Token::Type type, size_t at, std::string text) {
    Token t{type, std::move(text), 0, 0, 0, 0};
    locate(at, &t);
    out_.push_back(std::move(t));
  }

  // `{%[-+]?\s*raw\s*(-%}|%})` at `start`; *body: where the raw text begins.
  bool raw_begin(size_t start, size_t* body) const {
    size_t p = start + 2;
    if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) ++p;
    p = skip_space(p);
    if (!starts(p, "raw")) return false;
    p = skip_space(p + 3);
    if (starts(p, "-%}")) {
      *body = skip_py_space(p + 3);
      return true;
    }
    if (starts(p, "%}")) {
      *body = p + 2;  // no trim_blocks after {% raw %}: jinja2's rule has no \n? there
      return true;
    }
    return false;
  }

  void lex_raw(size_t start, size_t body) {
    set_line_starting(body);
    for (size_t q = src_.find("{%", body); q != std::string::npos; q = src_.find("{%", q + 1)) {
      size_t p = q + 2;
      char sign = 0;
      if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) sign = src_[p++];
      p = skip_space(p);
      if (!starts(p, "endraw")) continue;
      p = skip_space(p + 6);
      size_t end;
      if (starts(p, "+%}")) {
        end = p + 3;
      } else if (starts(p, "-%}")) {
        end = skip_py_space(p + 3);
      } else if (starts(p, "%}")) {
        end = p + 2;
        if (end < src_.size() && src_[end] == '\n') ++end;
      } else {
        continue;
      }
      emit_data(body, strip_before(std::string_view(src_).substr(body, q - body), sign, true));
      pos_ = end;
      set_line_starting(end);
      return;
    }
    error_at(start, "missing end of raw directive");
  }

  void lex_comment(size_t start, size_t body) {
    const size_t q = src_.find("#}", body);
    if (q == std::string::npos) error_at(start, "missing end of comment tag");
    const char sign = q > body && (src_[q - 1] == '-' || src_[q - 1] == '+') ? src_[q - 1] : 0;
    size_t end = q + 2;
    if (sign == '-') {
      end = skip_py_space(end);
    } else if (sign != '+' && end < src_.size() && src_[end] == '\n') {
      ++end;  // trim_blocks
    }
    pos_ = end;
    set_line_starting(end);
  }

  void lex_tag(size_t start, size_t p, bool block) {
    push(block ? Token::Type::BlockBegin : Token::Type::VarBegin, start, "");
    std::string brackets;
    while (true) {
      p = skip_space(p);
      if (p >= src_.size())
        error_at(start, block ? "unexpected end of template, expected '%}'"
                              : "unexpected end of template, expected '}}'");
      if (brackets.empty()) {
        size_t end = 0;
        if (block) {
          if (starts(p, "-%}")) {
            end = skip_py_space(p + 3);
          } else if (starts(p, "+%}")) {
            end = p + 3;
          } else if (starts(p, "%}")) {
            end = p + 2;
            if (end < src_.size() && src_[end] == '\n') ++end;  // trim_blocks
          }
        } else {
          if (starts(p, "-}}")) {
            end = skip_py_space(p + 3);
          } else if (starts(p, "}}")) {
            end = p + 2;
          }
        }
        if (end) {
          push(block ? Token::Type::BlockEnd : Token::Type::VarEnd, p, "");
          pos_ = end;
          set_line_starting(end);
          return;
        }
      }
      p = lex_token(p, &brackets);
    }
  }

  size_t lex_token(size_t p, std::string* brackets) {
    const char c = src_[p];
    if (digit(c)) return lex_number(p);
    if (name_start(c) || c == '_') {
      size_t e = p;
      while (e < src_.size() && name_char(src_[e])) ++e;
      push(Token::Type::Name, p, src_.substr(p, e - p));
      return e;
    }
    if (c == '\'' || c == '"') return lex_string(p);
    static const char* kOps[] = {"//", "**", "==", "!=", ">=", "<=", "+", "-", "/",
                                 "*",  "%",  "~",  "[",  "]",  "(",  ")", "{", "}",
                                 ">",  "<",  "=",  ".",  ":",  "|",  ",", ";"};
    for (const char* op : kOps) {
      if (!starts(p, op)) continue;
      const std::string o(op);
      if (o == "(" || o == "[" || o == "{") {
        FLASHRT_CHECK(brackets->size() < 256, "chat template line {}: brackets nested too deeply",
                      line_of(p));
        brackets->push_back(o[0]);
      } else if (o == ")" || o == "]" || o == "}") {
        const char open = o == ")" ? '(' : o == "]" ? '[' : '{';
        if (brackets->empty()) error_at(p, "unexpected '" + o + "'");
        if (brackets->back() != open) {
          const char want = brackets->back() == '(' ? ')' : brackets->back() == '[' ? ']' : '}';
          error_at(p, "unexpected '" + o + "', expected '" + std::string(1, want) + "'");
        }
        brackets->pop_back();
      }
      push(Token::Type::Op, p, o);
      return p + o.size();
    }
    error_at(p, fmt::format("unexpected char '{}'", c));
  }

  int line_of(size_t at) const {
    Token t;
    locate(at, &t);
    return t.line;
  }

  // Digits with single underscores between them (Python's literal syntax).
  size_t digits_run(size_t p, bool (*ok)(char)) const {
    if (p >= src_.size() || !ok(src_[p])) return p;
    size_t e = p + 1;
    while (e < src_.size()) {
      if (ok(src_[e])) {
        ++e;
      } else if (src_[e] == '_' && e + 1 < src_.size() && ok(src_[e + 1])) {
        e += 2;
      } else {
        break;
      }
    }
    return e;
  }

  size_t lex_number(size_t p) {
    auto clean = [&](size_t b, size_t e) {
      std::string s;
      for (size_t k = b; k < e; ++k)
        if (src_[k] != '_') s.push_back(src_[k]);
      return s;
    };
    // Floats: digits with a fraction and/or an exponent; not right after a '.', where digits are
    // a tuple index (`x.0`).
    const bool after_dot = p > 0 && src_[p - 1] == '.';
    const size_t int_end = digits_run(p, digit);
    if (!after_dot) {
      size_t e = int_end;
      bool is_float = false;
      if (e + 1 < src_.size() && src_[e] == '.' && digit(src_[e + 1])) {
        e = digits_run(e + 1, digit);
        is_float = true;
      }
      if (e < src_.size() && (src_[e] | 0x20) == 'e') {
        size_t x = e + 1;
        if (x < src_.size() && (src_[x] == '+' || src_[x] == '-')) ++x;
        if (x < src_.size() && digit(src_[x])) {
          e = digits_run(x, digit);
          is_float = true;
        }
      }
      if (is_float) {
        Token t{Token::Type::Float, src_.substr(p, e - p), 0, 0, 0, 0};
        t.fval = std::strtod(clean(p, e).c_str(), nullptr);
        locate(p, &t);
        out_.push_back(std::move(t));
        return e;
      }
    }
    int base = 10;
    size_t b = p, e = int_end;
    if (src_[p] == '0' && p + 1 < src_.size()) {
      const char x = static_cast<char>(src_[p + 1] | 0x20);
      bool (*ok)(char) = nullptr;
      if (x == 'x') {
        base = 16;
        ok = [](char ch) { return digit(ch) || ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'f'); };
      } else if (x == 'o') {
        base = 8;
        ok = [](char ch) { return ch >= '0' && ch <= '7'; };
      } else if (x == 'b') {
        base = 2;
        ok = [](char ch) { return ch == '0' || ch == '1'; };
      }
      if (ok) {
        b = p + 2;
        if (b < src_.size() && src_[b] == '_') ++b;
        e = digits_run(b, ok);
        if (e == b) error_at(p, "invalid number literal");
      } else {
        // `0(_?0)*`: a literal with a leading zero is only zero.
        e = p + 1;
        while (e < src_.size() &&
               (src_[e] == '0' || (src_[e] == '_' && e + 1 < src_.size() && src_[e + 1] == '0')))
          ++e;
      }
    }
    const std::string d = clean(b, e);
    errno = 0;
    char* endp = nullptr;
    const unsigned long long v = std::strtoull(d.c_str(), &endp, base);
    if (errno == ERANGE || v > static_cast<unsigned long long>(INT64_MAX))
      error_at(p, "integer literal too large");
    Token t{Token::Type::Int, src_.substr(p, e - p), static_cast<int64_t>(v), 0, 0, 0};
    locate(p, &t);
    out_.push_back(std::move(t));
    return e;
  }

  // A quoted string; escapes as Python's unicode-escape codec decodes them.
  size_t lex_string(size_t p) {
    const char q = src_[p];
    std::string v;
    size_t k = p + 1;
    auto hex = [&](size_t at, int n, uint32_t* out) {
      uint32_t x = 0;
      for (int d = 0; d < n; ++d) {
        if (at + static_cast<size_t>(d) >= src_.size()) return false;
        const char ch = src_[at + static_cast<size_t>(d)];
        int h;
        if (digit(ch)) {
          h = ch - '0';
        } else if ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'f') {
          h = (ch | 0x20) - 'a' + 10;
        } else {
          return false;
        }
        x = x * 16 + static_cast<uint32_t>(h);
      }
      *out = x;
      return true;
    };
    while (true) {
      if (k >= src_.size()) error_at(p, "unterminated string literal");
      const char c = src_[k];
      if (c == q) break;
      if (c != '\\') {
        v.push_back(c);
        ++k;
        continue;
      }
      if (k + 1 >= src_.size()) error_at(p, "unterminated string literal");
      const char e = src_[k + 1];
      k += 2;
      switch (e) {
        case '\n':
          break;  // a line continuation
        case '\\':
        case '\'':
        case '"':
          v.push_back(e);
          break;
        case 'a':
          v.push_back('\a');
          break;
        case 'b':
          v.push_back('\b');
          break;
        case 'f':
          v.push_back('\f');
          break;
        case 'n':
          v.push_back('\n');
          break;
        case 'r':
          v.push_back('\r');
          break;
        case 't':
          v.push_back('\t');
          break;
        case 'v':
          v.push_back('\v');
          break;
        case 'x':
        case 'u':
        case 'U': {
          const int n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          uint32_t x;
          if (!hex(k, n, &x)) error_at(k - 2, "truncated \\" + std::string(1, e) + " escape");
          if (x > 0x10ffff) error_at(k - 2, "illegal Unicode character");
          text::append_utf8(&v, x);
          k += static_cast<size_t>(n);
          break;
        }
        default:
          if (e >= '0' && e <= '7') {
            uint32_t x = static_cast<uint32_t>(e - '0');
            for (int d = 0; d < 2 && k < src_.size() && src_[k] >= '0' && src_[k] <= '7'; ++d)
              x = x * 8 + static_cast<uint32_t>(src_[k++] - '0');
            text::append_utf8(&v, x);
          } else {
            v.push_back('\\');  // unknown escapes stay as they are
            v.push_back(e);
          }
      }
    }
    push(Token::Type::String, p, std::move(v));
    return k + 1;
  }

  std::string src_;
  std::vector<size_t> line_starts_;
  size_t pos_ = 0;
  bool line_starting_ = true;
  std::vector<Token> out_;
};

}  // namespace

std::vector<Token> lex(std::string_view source) {
  return Lexer(source).run();
}

}  // namespace flashrt::jinja

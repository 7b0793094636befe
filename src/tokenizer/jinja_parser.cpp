// A recursive-descent parser following jinja2's grammar (jinja2/parser.py) rule for rule, so that
// precedence and the odd corners (filters binding tighter than unary minus, left-associative **,
// `is` tests taking one bare argument) come out the same.
#include <algorithm>
#include <initializer_list>

#include "core/error.h"
#include "tokenizer/jinja_ast.h"
#include "tokenizer/jinja_lexer.h"

namespace flashrt::jinja {

namespace {

using T = Token::Type;

// Nesting past this is an error rather than a deep recursion (the template is untrusted).
constexpr int kMaxNesting = 128;
// Operator and filter chains (`a + b + c ...`) deepen trees without recursing in the parser; the
// evaluator recurses over them, so their depth is bounded too.
constexpr int kMaxExprDepth = 400;

std::string describe(const Token& t) {
  switch (t.type) {
    case T::Data:
      return "template data";
    case T::VarBegin:
      return "begin of print statement";
    case T::VarEnd:
      return "end of print statement";
    case T::BlockBegin:
      return "begin of statement block";
    case T::BlockEnd:
      return "end of statement block";
    case T::Eof:
      return "end of template";
    case T::String:
      return "string";
    case T::Int:
      return "integer";
    case T::Float:
      return "float";
    default:
      return t.text;
  }
}

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : t_(std::move(tokens)) {}

  Body parse_template() {
    Body body = subparse({});
    if (cur().type != T::Eof) fail_at(cur(), "unexpected '" + describe(cur()) + "'");
    return body;
  }

 private:
  const Token& cur() const { return t_[k_]; }
  const Token& look() const { return t_[std::min(k_ + 1, t_.size() - 1)]; }
  void advance() {
    if (k_ + 1 < t_.size()) ++k_;
  }
  bool is_op(const char* op) const { return cur().type == T::Op && cur().text == op; }
  bool is_name(const char* n) const { return cur().type == T::Name && cur().text == n; }
  bool skip_op(const char* op) {
    if (!is_op(op)) return false;
    advance();
    return true;
  }
  bool skip_name(const char* n) {
    if (!is_name(n)) return false;
    advance();
    return true;
  }

  [[noreturn]] void fail_at(const Token& t, const std::string& message) const {
    syntax_error(t.line, t.col, message);
  }

  void expect_op(const char* op) {
    if (!skip_op(op)) fail_at(cur(), fmt::format("expected '{}', got '{}'", op, describe(cur())));
  }
  std::string expect_name() {
    if (cur().type != T::Name) fail_at(cur(), "expected a name, got '" + describe(cur()) + "'");
    std::string n = cur().text;
    advance();
    return n;
  }
  void expect(T type, const char* what) {
    if (cur().type != type)
      fail_at(cur(), fmt::format("expected {}, got '{}'", what, describe(cur())));
    advance();
  }

  struct Nest {
    Parser* p;
    explicit Nest(Parser* parser) : p(parser) {
      if (++p->nesting_ > kMaxNesting)
        p->fail_at(p->cur(),
                   fmt::format("template nested too deeply (over {} levels)", kMaxNesting));
    }
    ~Nest() { --p->nesting_; }
  };

  ExprPtr node(Expr::Op op, int line) {
    auto e = std::make_unique<Expr>();
    e->op = op;
    e->line = line;
    return e;
  }

  // ---- statements ----

  // Parses until a block tag whose name is in `end` (left current) or the end of the template.
  Body subparse(std::initializer_list<const char*> end) {
    Body body;
    while (true) {
      const Token& t = cur();
      if (t.type == T::Eof) {
        if (end.size() == 0) return body;
        std::string want;
        for (const char* e : end) want += std::string(want.empty() ? "" : " or ") + "'" + e + "'";
        fail_at(t, "unexpected end of template, expected " + want);
      }
      if (t.type == T::Data) {
        auto s = std::make_unique<Stmt>();
        s->type = Stmt::Type::Data;
        s->line = t.line;
        s->text = t.text;
        body.push_back(std::move(s));
        advance();
      } else if (t.type == T::VarBegin) {
        auto s = std::make_unique<Stmt>();
        s->type = Stmt::Type::Print;
        s->line = t.line;
        advance();
        s->expr = parse_tuple(false, true, {}, false);
        expect(T::VarEnd, "'}}'");
        body.push_back(std::move(s));
      } else if (t.type == T::BlockBegin) {
        advance();
        if (cur().type == T::Name)
          for (const char* e : end)
            if (cur().text == e) return body;
        body.push_back(parse_statement());
        expect(T::BlockEnd, "'%}'");
      } else {
        fail_at(t, "unexpected '" + describe(t) + "'");
      }
    }
  }

  // After the statement's own tokens: the %} and the body up to one of `end` (then current).
  Body parse_body(std::initializer_list<const char*> end) {
    expect(T::BlockEnd, "'%}'");
    Nest nest(this);
    return subparse(end);
  }

  // parse_body, then consumes the end tag's name (jinja2's drop_needle).
  Body parse_body_drop(const char* end) {
    Body b = parse_body({end});
    advance();
    return b;
  }

  std::unique_ptr<Stmt> parse_statement() {
    const Token& t = cur();
    if (t.type != T::Name) fail_at(t, "tag name expected");
    auto s = std::make_unique<Stmt>();
    s->line = t.line;
    const std::string tag = t.text;
    advance();
    if (tag == "if") {
      s->type = Stmt::Type::If;
      while (true) {
        s->conds.push_back(parse_tuple(false, false, {}, false));
        s->bodies.push_back(parse_body({"elif", "else", "endif"}));
        const std::string which = cur().text;
        advance();
        if (which == "elif") continue;
        if (which == "else") s->bodies.push_back(parse_body_drop("endif"));
        break;
      }
    } else if (tag == "for") {
      s->type = Stmt::Type::For;
      parse_targets(s.get(), "in");
      if (!skip_name("in")) fail_at(cur(), "expected 'in', got '" + describe(cur()) + "'");
      s->expr = parse_tuple(false, false, {"recursive"}, false);
      if (skip_name("if")) s->cond = parse_expression(true);
      if (is_name("recursive")) fail_at(cur(), "recursive loops are not supported");
      ++loops_;
      s->bodies.push_back(parse_body({"endfor", "else"}));
      --loops_;
      const std::string which = cur().text;
      advance();
      if (which == "else") s->bodies.push_back(parse_body_drop("endfor"));
    } else if (tag == "set") {
      if (cur().type == T::Name && look().type == T::Op && look().text == ".") {
        s->targets.push_back(expect_name());
        advance();
        s->attr = expect_name();
      } else {
        parse_targets(s.get(), nullptr);
      }
      if (skip_op("=")) {
        s->type = Stmt::Type::Set;
        s->expr = parse_tuple(false, true, {}, false);
      } else {
        s->type = Stmt::Type::SetBlock;
        if (!s->attr.empty() || s->unpack) fail_at(cur(), "a block assignment takes a single name");
        if (is_op("|")) s->expr = parse_filter(nullptr, false);
        s->bodies.push_back(parse_body_drop("endset"));
      }
    } else if (tag == "macro") {
      s->type = Stmt::Type::Macro;
      s->name = expect_name();
      expect_op("(");
      while (!is_op(")")) {
        if (!s->targets.empty()) expect_op(",");
        s->targets.push_back(expect_name());
        if (skip_op("=")) {
          s->conds.push_back(parse_expression(true));
        } else {
          if (!s->conds.empty() && s->conds.back())
            fail_at(cur(), "non-default argument follows default argument");
          s->conds.push_back(nullptr);
        }
      }
      expect_op(")");
      const int loops = loops_;
      loops_ = 0;  // a loop around the definition is not a loop for the body
      s->bodies.push_back(parse_body_drop("endmacro"));
      loops_ = loops;
    } else if (tag == "break" || tag == "continue") {
      if (loops_ == 0) fail_at(t_[k_ - 1], "'" + tag + "' outside of a loop");
      s->type = tag == "break" ? Stmt::Type::Break : Stmt::Type::Continue;
    } else if (tag == "filter") {
      s->type = Stmt::Type::FilterBlock;
      s->expr = parse_filter(nullptr, true);
      s->bodies.push_back(parse_body_drop("endfilter"));
    } else if (tag == "with") {
      s->type = Stmt::Type::With;
      while (cur().type != T::BlockEnd) {
        if (!s->targets.empty()) expect_op(",");
        s->targets.push_back(expect_name());
        expect_op("=");
        s->conds.push_back(parse_expression(true));
      }
      s->bodies.push_back(parse_body_drop("endwith"));
    } else if (tag == "generation") {
      // transformers' AssistantTracker: marks the assistant's tokens; the text is the body's. It
      // is a call block, so the body is a function of its own: no loop controls across it.
      s->type = Stmt::Type::Scope;
      const int loops = loops_;
      loops_ = 0;
      s->bodies.push_back(parse_body_drop("endgeneration"));
      loops_ = loops;
    } else {
      fail_at(t_[k_ - 1], "unknown tag '" + tag + "'");
    }
    return s;
  }

  // `a` or `a, b` or `(a, b)`: the names a for/set assigns.
  void parse_targets(Stmt* s, const char* end) {
    const bool paren = skip_op("(");
    while (true) {
      s->targets.push_back(expect_name());
      if (!skip_op(",")) break;
      s->unpack = true;
      if ((paren && is_op(")")) || (end && is_name(end)) || is_op("=")) break;
    }
    if (paren) {
      expect_op(")");
      s->unpack = true;
    }
  }

  // ---- expressions ----

  bool tuple_end(std::initializer_list<const char*> extra) const {
    const Token& c = cur();
    if (c.type == T::VarEnd || c.type == T::BlockEnd || (c.type == T::Op && c.text == ")"))
      return true;
    for (const char* e : extra)
      if (c.type == T::Name && c.text == e) return true;
    return false;
  }

  ExprPtr parse_tuple(bool simplified, bool with_condexpr, std::initializer_list<const char*> extra,
                      bool explicit_parens) {
    const int line = cur().line;
    std::vector<ExprPtr> items;
    bool is_tuple = false;
    while (true) {
      if (!items.empty()) expect_op(",");
      if (tuple_end(extra)) break;
      items.push_back(simplified ? parse_primary() : parse_expression(with_condexpr));
      if (is_op(",")) {
        is_tuple = true;
      } else {
        break;
      }
    }
    if (!is_tuple) {
      if (!items.empty()) return std::move(items[0]);
      if (!explicit_parens) fail_at(cur(), "expected an expression, got '" + describe(cur()) + "'");
    }
    auto e = node(Expr::Op::Tuple, line);
    e->args = std::move(items);
    return checked(std::move(e));
  }

  ExprPtr parse_expression(bool with_condexpr) {
    Nest nest(this);
    return with_condexpr ? parse_condexpr() : parse_or();
  }

  ExprPtr parse_condexpr() {
    const int line = cur().line;
    ExprPtr e = parse_or();
    while (skip_name("if")) {
      auto c = node(Expr::Op::Cond, line);
      c->args.push_back(std::move(e));
      c->args.push_back(parse_or());
      c->args.push_back(skip_name("else") ? parse_condexpr() : nullptr);
      e = checked(std::move(c));
    }
    return e;
  }

  ExprPtr binary(Expr::Op op, ExprPtr a, ExprPtr b, int line, std::string name = {}) {
    auto e = node(op, line);
    e->name = std::move(name);
    e->args.push_back(std::move(a));
    e->args.push_back(std::move(b));
    return checked(std::move(e));
  }

  ExprPtr checked(ExprPtr e) {
    int d = 0;
    for (const auto& a : e->args)
      if (a) d = std::max(d, a->depth);
    for (const auto& a : e->kwargs) d = std::max(d, a->depth);
    e->depth = d + 1;
    if (e->depth > kMaxExprDepth)
      fail_at(cur(), fmt::format("expression nested too deeply (over {} levels)", kMaxExprDepth));
    return e;
  }

  ExprPtr parse_or() {
    const int line = cur().line;
    ExprPtr e = parse_and();
    while (skip_name("or")) e = binary(Expr::Op::Or, std::move(e), parse_and(), line);
    return e;
  }

  ExprPtr parse_and() {
    const int line = cur().line;
    ExprPtr e = parse_not();
    while (skip_name("and")) e = binary(Expr::Op::And, std::move(e), parse_not(), line);
    return e;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      const int line = cur().line;
      advance();
      Nest nest(this);
      auto e = node(Expr::Op::Not, line);
      e->args.push_back(parse_not());
      return checked(std::move(e));
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    const int line = cur().line;
    ExprPtr first = parse_math1();
    ExprPtr e;
    while (true) {
      std::string op;
      if (cur().type == T::Op && (cur().text == "==" || cur().text == "!=" || cur().text == "<" ||
                                  cur().text == "<=" || cur().text == ">" || cur().text == ">=")) {
        op = cur().text;
        advance();
      } else if (is_name("in")) {
        op = "in";
        advance();
      } else if (is_name("not") && look().type == T::Name && look().text == "in") {
        op = "notin";
        advance();
        advance();
      } else {
        break;
      }
      if (!e) {
        e = node(Expr::Op::Compare, line);
        e->args.push_back(std::move(first));
      }
      e->ops.push_back(op);
      e->args.push_back(parse_math1());
    }
    return e ? checked(std::move(e)) : std::move(first);
  }

  ExprPtr parse_math1() {
    const int line = cur().line;
    ExprPtr e = parse_concat();
    while (is_op("+") || is_op("-")) {
      const std::string op = cur().text;
      advance();
      e = binary(Expr::Op::Binary, std::move(e), parse_concat(), line, op);
    }
    return e;
  }

  ExprPtr parse_concat() {
    const int line = cur().line;
    ExprPtr e = parse_math2();
    while (skip_op("~")) e = binary(Expr::Op::Binary, std::move(e), parse_math2(), line, "~");
    return e;
  }

  ExprPtr parse_math2() {
    const int line = cur().line;
    ExprPtr e = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const std::string op = cur().text;
      advance();
      e = binary(Expr::Op::Binary, std::move(e), parse_pow(), line, op);
    }
    return e;
  }

  ExprPtr parse_pow() {
    const int line = cur().line;
    ExprPtr e = parse_unary(true);
    while (skip_op("**")) e = binary(Expr::Op::Binary, std::move(e), parse_unary(true), line, "**");
    return e;
  }

  ExprPtr parse_unary(bool with_filter) {
    Nest nest(this);
    const int line = cur().line;
    ExprPtr e;
    if (is_op("-") || is_op("+")) {
      const bool neg = is_op("-");
      advance();
      e = node(neg ? Expr::Op::Neg : Expr::Op::Pos, line);
      e->args.push_back(parse_unary(false));
      e = checked(std::move(e));
    } else {
      e = parse_primary();
    }
    e = parse_postfix(std::move(e));
    if (with_filter) e = parse_filter_expr(std::move(e));
    return e;
  }

  ExprPtr parse_primary() {
    Nest nest(this);
    const Token& t = cur();
    const int line = t.line;
    if (t.type == T::Name) {
      ExprPtr e;
      if (t.text == "true" || t.text == "True" || t.text == "false" || t.text == "False") {
        e = node(Expr::Op::Const, line);
        e->value = Value::boolean(t.text[0] == 't' || t.text[0] == 'T');
      } else if (t.text == "none" || t.text == "None") {
        e = node(Expr::Op::Const, line);
        e->value = Value::none();
      } else {
        e = node(Expr::Op::Name, line);
        e->name = t.text;
      }
      advance();
      return e;
    }
    if (t.type == T::String) {
      std::string s;
      while (cur().type == T::String) {  // adjacent literals concatenate
        s += cur().text;
        advance();
      }
      auto e = node(Expr::Op::Const, line);
      e->value = Value::string(std::move(s));
      return e;
    }
    if (t.type == T::Int || t.type == T::Float) {
      auto e = node(Expr::Op::Const, line);
      e->value = t.type == T::Int ? Value::integer(t.ival) : Value::real(t.fval);
      advance();
      return e;
    }
    if (skip_op("(")) {
      ExprPtr e = parse_tuple(false, true, {}, true);
      expect_op(")");
      return e;
    }
    if (skip_op("[")) {
      auto e = node(Expr::Op::List, line);
      while (!is_op("]")) {
        if (!e->args.empty()) expect_op(",");
        if (is_op("]")) break;
        e->args.push_back(parse_expression(true));
      }
      expect_op("]");
      return checked(std::move(e));
    }
    if (skip_op("{")) {
      auto e = node(Expr::Op::Dict, line);
      while (!is_op("}")) {
        if (!e->args.empty()) expect_op(",");
        if (is_op("}")) break;
        e->args.push_back(parse_expression(true));
        expect_op(":");
        e->args.push_back(parse_expression(true));
      }
      expect_op("}");
      return checked(std::move(e));
    }
    fail_at(t, "unexpected '" + describe(t) + "'");
  }

  ExprPtr parse_postfix(ExprPtr e) {
    while (true) {
      if (is_op(".") || is_op("[")) {
        e = checked(parse_subscript(std::move(e)));
      } else if (is_op("(")) {
        e = checked(parse_call(std::move(e)));
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_filter_expr(ExprPtr e) {
    while (true) {
      if (is_op("|")) {
        e = parse_filter(std::move(e), false);
      } else if (is_name("is")) {
        e = checked(parse_test(std::move(e)));
      } else if (is_op("(")) {
        e = checked(parse_call(std::move(e)));
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr e) {
    const Token& t = cur();
    const int line = t.line;
    if (skip_op(".")) {
      const Token& a = cur();
      if (a.type == T::Name) {
        auto g = node(Expr::Op::Attr, line);
        g->name = a.text;
        g->args.push_back(std::move(e));
        advance();
        return g;
      }
      if (a.type != T::Int) fail_at(a, "expected name or number");
      auto g = node(Expr::Op::Item, line);
      auto k = node(Expr::Op::Const, line);
      k->value = Value::integer(a.ival);
      g->args.push_back(std::move(e));
      g->args.push_back(std::move(k));
      advance();
      return g;
    }
    expect_op("[");
    std::vector<ExprPtr> keys;
    while (!is_op("]")) {
      if (!keys.empty()) expect_op(",");
      keys.push_back(parse_subscribed());
    }
    expect_op("]");
    if (keys.empty()) fail_at(cur(), "expected a subscript");
    auto g = node(Expr::Op::Item, line);
    g->args.push_back(std::move(e));
    if (keys.size() == 1) {
      g->args.push_back(std::move(keys[0]));
    } else {
      auto tup = node(Expr::Op::Tuple, line);
      tup->args = std::move(keys);
      g->args.push_back(std::move(tup));
    }
    return g;
  }

  ExprPtr parse_subscribed() {
    const int line = cur().line;
    auto sl = node(Expr::Op::Slice, line);
    if (skip_op(":")) {
      sl->args.push_back(nullptr);
    } else {
      ExprPtr e = parse_expression(true);
      if (!skip_op(":")) return e;
      sl->args.push_back(std::move(e));
    }
    auto part = [&]() -> ExprPtr {
      if (is_op("]") || is_op(",") || is_op(":")) return nullptr;
      return parse_expression(true);
    };
    sl->args.push_back(part());
    if (skip_op(":")) {
      sl->args.push_back(part());
    } else {
      sl->args.push_back(nullptr);
    }
    return checked(std::move(sl));
  }

  void parse_call_args(Expr* e) {
    expect_op("(");
    bool need_comma = false;
    while (!is_op(")")) {
      if (need_comma) {
        expect_op(",");
        if (is_op(")")) break;
      }
      if (is_op("*") || is_op("**")) fail_at(cur(), "*args and **kwargs are not supported");
      if (cur().type == T::Name && look().type == T::Op && look().text == "=") {
        e->kwnames.push_back(cur().text);
        advance();
        advance();
        e->kwargs.push_back(parse_expression(true));
      } else {
        if (!e->kwargs.empty()) fail_at(cur(), "invalid syntax for function call expression");
        e->args.push_back(parse_expression(true));
      }
      need_comma = true;
    }
    expect_op(")");
  }

  ExprPtr parse_call(ExprPtr callee) {
    auto e = node(Expr::Op::Call, cur().line);
    e->args.push_back(std::move(callee));
    parse_call_args(e.get());
    return e;
  }

  // `| name(args)` chains; `inline_first`: the first filter has no `|` (a filter block).
  ExprPtr parse_filter(ExprPtr subject, bool inline_first) {
    while (is_op("|") || inline_first) {
      if (!inline_first) advance();
      inline_first = false;
      auto f = node(Expr::Op::Filter, cur().line);
      f->name = expect_name();
      while (skip_op(".")) f->name += "." + expect_name();
      f->args.push_back(std::move(subject));
      if (is_op("(")) parse_call_args(f.get());
      subject = checked(std::move(f));
    }
    return subject;
  }

  ExprPtr parse_test(ExprPtr subject) {
    auto e = node(Expr::Op::Test, cur().line);
    advance();  // is
    e->negated = skip_name("not");
    e->name = expect_name();
    while (skip_op(".")) e->name += "." + expect_name();
    e->args.push_back(std::move(subject));
    const Token& c = cur();
    if (is_op("(")) {
      parse_call_args(e.get());
    } else if ((c.type == T::Name || c.type == T::String || c.type == T::Int ||
                c.type == T::Float || is_op("[") || is_op("{")) &&
               !is_name("else") && !is_name("or") && !is_name("and")) {
      if (is_name("is")) fail_at(c, "you cannot chain multiple tests with is");
      e->args.push_back(parse_postfix(parse_primary()));
    }
    return e;
  }

  std::vector<Token> t_;
  size_t k_ = 0;
  int nesting_ = 0;
  int loops_ = 0;
};

}  // namespace

std::shared_ptr<Program> parse(std::string_view source) {
  auto p = std::make_shared<Program>();
  p->body = Parser(lex(source)).parse_template();
  analyze_frames(p.get());
  return p;
}

}  // namespace flashrt::jinja

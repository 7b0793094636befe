// Statements, expressions, operators, attribute/item access, calls and macros, as jinja2's
// generated Python code would do them in the immutable sandbox.
#include <climits>
#include <cmath>

#include "tokenizer/jinja.h"
#include "tokenizer/jinja_interp.h"
#include "tokenizer/jinja_text.h"

namespace flashrt::jinja {

namespace {

[[noreturn]] void raise_undefined(const Value& u) {
  throw Error(*u.s);
}

// Entering a frame: the names it assigns before reading start out undefined (analyze_frames).
void bind_undefined(Scope* scope, const std::vector<std::vector<std::string>>& frames, size_t k) {
  if (k >= frames.size()) return;
  for (const std::string& n : frames[k])
    scope->set(n, Value::undefined(repr_string(n) + " is undefined"));
}

// jinja2's object_type_repr: how an error names the object that lacks an attribute.
std::string object_type(const Value& v) {
  if (v.is_none()) return "None";
  if (v.kind == Kind::Object) {
    if (v.obj->type == Object::Type::Namespace) return "jinja2.utils.Namespace object";
    if (v.obj->type == Object::Type::Loop) return "jinja2.runtime.LoopContext object";
  }
  return type_name(v) + " object";
}

Value no_attribute(const Value& obj, const std::string& name) {
  return Value::undefined(repr_string(object_type(obj)) + " has no attribute " + repr_string(name));
}

Value no_item(const Value& obj, const Value& key) {
  if (key.is_string()) return no_attribute(obj, *key.s);
  return Value::undefined(object_type(obj) + " has no element " + repr(key));
}

// The `loop` variable of a for loop; one per loop, advanced in place as jinja2's LoopContext is.
struct LoopObj : Object {
  LoopObj() : Object(Type::Loop) {}
  std::shared_ptr<const List> items;
  size_t index0 = 0;
};

struct LoopCycle : Callable {
  explicit LoopCycle(std::shared_ptr<LoopObj> l) : Callable("cycle"), loop(std::move(l)) {}
  Value call(Interp&, CallArgs& args) const override {
    FLASHRT_CHECK(!args.pos.empty(), "no items for cycling given");
    return args.pos[loop->index0 % args.pos.size()];
  }
  std::shared_ptr<LoopObj> loop;
};

bool add_overflows(int64_t a, int64_t b, int64_t* r) {
  return __builtin_add_overflow(a, b, r);
}
bool sub_overflows(int64_t a, int64_t b, int64_t* r) {
  return __builtin_sub_overflow(a, b, r);
}
bool mul_overflows(int64_t a, int64_t b, int64_t* r) {
  return __builtin_mul_overflow(a, b, r);
}

[[noreturn]] void int_overflow() {
  fail("integer overflow (past 64 bits)");
}

[[noreturn]] void bad_operands(const std::string& op, const Value& a, const Value& b) {
  fail("unsupported operand type(s) for {}: '{}' and '{}'", op, type_name(a), type_name(b));
}

}  // namespace

struct Interp::DepthGuard {
  Interp* in;
  explicit DepthGuard(Interp* i) : in(i) {
    if (++in->depth_ > kMaxDepth) {
      --in->depth_;
      fail("template recursion too deep (over {} levels)", kMaxDepth);
    }
  }
  ~DepthGuard() { --in->depth_; }
};

// A {% macro %}: rendered in a scope of its own whose parent is where it was defined (looked up
// when called, so it sees later assignments there, as jinja2's closures do).
struct MacroFn : Callable {
  MacroFn(const Stmt* d, std::weak_ptr<Scope> s) : Callable(d->name), def(d), scope(std::move(s)) {}
  Value call(Interp& in, CallArgs& args) const override {
    const size_t n = def->targets.size();
    FLASHRT_CHECK(args.pos.size() <= n, "macro '{}' takes not more than {} argument(s)", name, n);
    if (++in.call_depth_ > kMaxCallDepth) {
      --in.call_depth_;
      fail("macro calls nested too deeply (over {})", kMaxCallDepth);
    }
    struct Restore {
      Interp& in;
      ~Restore() { --in.call_depth_; }
    } restore{in};
    auto sc = std::make_shared<Scope>();
    sc->parent = scope.lock();
    if (!sc->parent) sc->parent = in.root_;
    bind_undefined(sc.get(), def->undefined, 0);
    std::vector<const Value*> bound(n, nullptr);
    for (size_t k = 0; k < args.pos.size(); ++k) bound[k] = &args.pos[k];
    for (const auto& [kname, v] : args.kw) {
      size_t k = 0;
      while (k < n && def->targets[k] != kname) ++k;
      FLASHRT_CHECK(k < n, "macro '{}' takes no keyword argument '{}'", name, kname);
      FLASHRT_CHECK(!bound[k], "macro '{}' got multiple values for argument '{}'", name, kname);
      bound[k] = &v;
    }
    for (size_t k = 0; k < n; ++k) {
      if (bound[k]) {
        sc->set(def->targets[k], *bound[k]);
      } else if (def->conds[k]) {
        sc->set(def->targets[k], in.eval(*def->conds[k], sc));
      } else {
        sc->set(def->targets[k], Value::undefined("parameter " + repr_string(def->targets[k]) +
                                                  " was not provided"));
      }
    }
    std::string out;
    in.exec(def->bodies[0], sc, &out);
    return in.make_string(std::move(out));
  }
  const Stmt* def;
  std::weak_ptr<Scope> scope;
};

const Value* Scope::find(std::string_view name) const {
  for (const Scope* s = this; s; s = s->parent.get())
    for (const auto& [k, v] : s->vars)
      if (k == name) return &v;
  return nullptr;
}

void Scope::set(const std::string& name, Value v) {
  for (auto& [k, old] : vars)
    if (k == name) {
      old = std::move(v);
      return;
    }
  vars.emplace_back(name, std::move(v));
}

Params::Params(const char* fn, const CallArgs& args, std::initializer_list<const char*> names)
    : fn_(fn), slots_(names.size(), nullptr), names_(names) {
  FLASHRT_CHECK(args.pos.size() <= names_.size(), "{}() takes at most {} argument(s), {} given", fn,
                names_.size(), args.pos.size());
  for (size_t k = 0; k < args.pos.size(); ++k) slots_[k] = &args.pos[k];
  for (const auto& [name, v] : args.kw) {
    size_t k = 0;
    while (k < names_.size() && name != names_[k]) ++k;
    FLASHRT_CHECK(k < names_.size(), "{}() got an unexpected keyword argument '{}'", fn, name);
    FLASHRT_CHECK(!slots_[k], "{}() got multiple values for argument '{}'", fn, name);
    slots_[k] = &v;
  }
}

int64_t to_int(const Value& v, const char* what) {
  FLASHRT_CHECK(v.is_int(), "{} must be an integer, not '{}'", what, type_name(v));
  return v.i;
}

int64_t Params::integer(size_t k, int64_t dflt) const {
  if (!slots_[k]) return dflt;
  return to_int(*slots_[k], (std::string(fn_) + "() argument '" + names_[k] + "'").c_str());
}

bool Params::boolean(size_t k, bool dflt) const {
  return slots_[k] ? truthy(*slots_[k]) : dflt;
}

std::string Params::string(size_t k, const std::string& dflt) const {
  return slots_[k] ? to_str(*slots_[k]) : dflt;
}

Interp::Interp(const Program& program, const RenderOptions& opts)
    : options(opts), program_(program), root_(std::make_shared<Scope>()) {}

Interp::~Interp() {
  // Namespaces are the only mutable values, so the only way to a reference cycle; empty them so
  // that everything the render built is freed.
  for (auto& ns : namespaces_) ns->attrs.clear();
}

Namespace* Interp::new_namespace(std::shared_ptr<Namespace>* holder) {
  *holder = std::make_shared<Namespace>();
  namespaces_.push_back(*holder);
  return holder->get();
}

void Interp::tick(size_t n) {
  iterations_ += n;
  FLASHRT_CHECK(iterations_ <= kMaxIterations, "template runs too long (over {} loop steps)",
                kMaxIterations);
}

void Interp::check_size(size_t bytes) {
  FLASHRT_CHECK(bytes <= kMaxOutput, "string too long (over {} MiB)", kMaxOutput >> 20);
}

Value Interp::make_string(std::string s) {
  check_size(s.size());
  work_ += s.size();
  FLASHRT_CHECK(work_ <= kMaxWork, "template builds too much text (over {} GiB)", kMaxWork >> 30);
  return Value::string(std::move(s));
}

void Interp::append_out(std::string* out, std::string_view s) {
  FLASHRT_CHECK(out->size() + s.size() <= kMaxOutput, "output too long (over {} MiB)",
                kMaxOutput >> 20);
  out->append(s);
}

std::string Interp::render(const nlohmann::ordered_json& context) {
  FLASHRT_CHECK(context.is_object() || context.is_null(),
                "chat template context must be a JSON object");
  try {
    if (context.is_object())
      for (const auto& [k, v] : context.items()) root_->set(k, from_json(v));
    for (const std::string& n : program_.undefined)
      root_->set(n, Value::undefined(repr_string(n) + " is undefined"));
    std::string out;
    exec(program_.body, root_, &out);
    return out;
  } catch (const Error& e) {
    fail("chat template line {}: {}", line_, e.what());
  }
}

Interp::Flow Interp::exec(const Body& body, const std::shared_ptr<Scope>& scope, std::string* out) {
  DepthGuard guard(this);
  for (const auto& s : body) {
    const Flow f = exec_stmt(*s, scope, out);
    if (f != Flow::Normal) return f;
  }
  return Flow::Normal;
}

Interp::Flow Interp::exec_stmt(const Stmt& s, const std::shared_ptr<Scope>& scope,
                               std::string* out) {
  line_ = s.line;
  switch (s.type) {
    case Stmt::Type::Data:
      append_out(out, s.text);
      return Flow::Normal;
    case Stmt::Type::Print: {
      const Value v = eval(*s.expr, scope);
      if (v.is_string()) {
        append_out(out, *v.s);
      } else {
        std::string t;
        append_str(&t, v);
        append_out(out, t);
      }
      return Flow::Normal;
    }
    case Stmt::Type::If:
      for (size_t k = 0; k < s.conds.size(); ++k)
        if (truthy(eval(*s.conds[k], scope))) return exec(s.bodies[k], scope, out);
      if (s.bodies.size() > s.conds.size()) return exec(s.bodies.back(), scope, out);
      return Flow::Normal;
    case Stmt::Type::For:
      exec_for(s, scope, out);
      return Flow::Normal;
    case Stmt::Type::Set: {
      Value v = eval(*s.expr, scope);
      if (!s.attr.empty()) {
        const Value* ns = scope->find(s.targets[0]);
        Namespace* n = ns ? ns->as<Namespace>() : nullptr;
        FLASHRT_CHECK(n, "cannot assign attribute on non-namespace object");
        n->set(s.attr, std::move(v));
      } else {
        assign(s, *scope, v);
      }
      return Flow::Normal;
    }
    case Stmt::Type::SetBlock:
    case Stmt::Type::FilterBlock: {
      auto inner = std::make_shared<Scope>();
      inner->parent = scope;
      bind_undefined(inner.get(), s.undefined, 0);
      std::string body;
      exec(s.bodies[0], inner, &body);
      Value v = make_string(std::move(body));
      if (s.expr) {
        filter_subject_ = std::move(v);
        v = eval(*s.expr, inner);
        filter_subject_ = Value();
      }
      if (s.type == Stmt::Type::SetBlock) {
        scope->set(s.targets[0], std::move(v));
      } else {
        append_out(out, to_str(v));
      }
      return Flow::Normal;
    }
    case Stmt::Type::Macro:
      scope->set(s.name, Value::object(std::make_shared<MacroFn>(&s, scope)));
      return Flow::Normal;
    case Stmt::Type::Break:
      return Flow::Break;
    case Stmt::Type::Continue:
      return Flow::Continue;
    case Stmt::Type::With: {
      auto inner = std::make_shared<Scope>();
      inner->parent = scope;
      bind_undefined(inner.get(), s.undefined, 0);
      for (size_t k = 0; k < s.targets.size(); ++k)
        inner->set(s.targets[k], eval(*s.conds[k], scope));
      return exec(s.bodies[0], inner, out);
    }
    case Stmt::Type::Scope: {
      // A call block's body: a function of its own, so what it assigns stays inside.
      auto inner = std::make_shared<Scope>();
      inner->parent = scope;
      bind_undefined(inner.get(), s.undefined, 0);
      exec(s.bodies[0], inner, out);
      return Flow::Normal;
    }
  }
  return Flow::Normal;
}

void Interp::assign(const Stmt& s, Scope& scope, const Value& v) {
  if (!s.unpack) {
    scope.set(s.targets[0], v);
    return;
  }
  const auto items = iterate(v);
  FLASHRT_CHECK(items->size() >= s.targets.size(),
                "not enough values to unpack (expected {}, got {})", s.targets.size(),
                items->size());
  FLASHRT_CHECK(items->size() <= s.targets.size(), "too many values to unpack (expected {})",
                s.targets.size());
  for (size_t k = 0; k < s.targets.size(); ++k) scope.set(s.targets[k], (*items)[k]);
}

void Interp::exec_for(const Stmt& s, const std::shared_ptr<Scope>& scope, std::string* out) {
  std::shared_ptr<const List> items = iterate(eval(*s.expr, scope));
  if (s.cond) {
    // `for x in xs if cond`: the filter runs first, so loop.index and loop.length count only
    // the items it keeps.
    List kept;
    for (const Value& item : *items) {
      tick();
      auto sc = std::make_shared<Scope>();
      sc->parent = scope;
      assign(s, *sc, item);
      if (truthy(eval(*s.cond, sc))) kept.push_back(item);
    }
    items = std::make_shared<const List>(std::move(kept));
  }
  if (items->empty()) {
    if (s.bodies.size() > 1) {
      auto sc = std::make_shared<Scope>();
      sc->parent = scope;
      bind_undefined(sc.get(), s.undefined, 1);
      exec(s.bodies[1], sc, out);
    }
    return;
  }
  auto loop = std::make_shared<LoopObj>();
  loop->items = items;
  const Value loop_value = Value::object(loop);
  for (size_t k = 0; k < items->size(); ++k) {
    tick();
    loop->index0 = k;
    // Each iteration gets a fresh scope: what the body sets does not outlive the iteration.
    auto sc = std::make_shared<Scope>();
    sc->parent = scope;
    bind_undefined(sc.get(), s.undefined, 0);
    assign(s, *sc, (*items)[k]);
    sc->set("loop", loop_value);
    if (exec(s.bodies[0], sc, out) == Flow::Break) break;
  }
}

std::shared_ptr<const List> Interp::iterate(const Value& v) {
  switch (v.kind) {
    case Kind::List:
      return v.list;
    case Kind::Dict: {
      List keys;
      keys.reserve(v.dict->size());
      for (const auto& kv : *v.dict) keys.push_back(kv.first);
      return std::make_shared<const List>(std::move(keys));
    }
    case Kind::String: {
      List chars;
      std::string c;
      for (char32_t ch : text::decode(*v.s)) {
        c.clear();
        text::append_utf8(&c, ch);
        chars.push_back(Value::string(c));
      }
      return std::make_shared<const List>(std::move(chars));
    }
    case Kind::Undefined:
      return std::make_shared<const List>();
    default:
      fail("'{}' object is not iterable", type_name(v));
  }
}

Value Interp::lookup(const std::string& name, const Scope& scope) {
  if (const Value* v = scope.find(name)) return *v;
  Value g = global(name);
  if (!g.is_undefined()) return g;
  return Value::undefined(repr_string(name) + " is undefined");
}

CallArgs Interp::eval_args(const Expr& e, size_t first, const std::shared_ptr<Scope>& scope) {
  CallArgs a;
  for (size_t k = first; k < e.args.size(); ++k) a.pos.push_back(eval(*e.args[k], scope));
  for (size_t k = 0; k < e.kwargs.size(); ++k)
    a.kw.emplace_back(e.kwnames[k], eval(*e.kwargs[k], scope));
  return a;
}

Value Interp::eval(const Expr& e, const std::shared_ptr<Scope>& scope) {
  DepthGuard guard(this);
  line_ = e.line;
  switch (e.op) {
    case Expr::Op::Const:
      return e.value;
    case Expr::Op::Name:
      return lookup(e.name, *scope);
    case Expr::Op::List:
    case Expr::Op::Tuple: {
      List l;
      l.reserve(e.args.size());
      for (const auto& a : e.args) l.push_back(eval(*a, scope));
      return Value::make_list(std::move(l), e.op == Expr::Op::Tuple);
    }
    case Expr::Op::Dict: {
      Dict d;
      for (size_t k = 0; k + 1 < e.args.size(); k += 2) {
        Value key = eval(*e.args[k], scope);
        Value val = eval(*e.args[k + 1], scope);
        FLASHRT_CHECK(key.kind != Kind::List || key.tuple, "unhashable type: '{}'", type_name(key));
        FLASHRT_CHECK(key.kind != Kind::Dict, "unhashable type: 'dict'");
        bool found = false;
        for (auto& [dk, dv] : d)
          if (equals(dk, key)) {
            dv = val;  // a repeated key keeps its first position and its last value
            found = true;
          }
        if (!found) d.emplace_back(std::move(key), std::move(val));
      }
      return Value::make_dict(std::move(d));
    }
    case Expr::Op::Attr:
      return getattr(eval(*e.args[0], scope), e.name);
    case Expr::Op::Item: {
      Value obj = eval(*e.args[0], scope);
      if (e.args[1]->op == Expr::Op::Slice) return eval_slice(obj, *e.args[1], scope);
      return getitem(obj, eval(*e.args[1], scope));
    }
    case Expr::Op::Slice:
      fail("a slice outside a subscript");
    case Expr::Op::Call: {
      Value callee = eval(*e.args[0], scope);
      CallArgs args = eval_args(e, 1, scope);
      line_ = e.line;
      return call(callee, args);
    }
    case Expr::Op::Filter: {
      Value subject = e.args[0] ? eval(*e.args[0], scope) : filter_subject_;
      CallArgs args = eval_args(e, 1, scope);
      line_ = e.line;
      return filter(e.name, subject, args);
    }
    case Expr::Op::Test: {
      Value subject = eval(*e.args[0], scope);
      CallArgs args = eval_args(e, 1, scope);
      line_ = e.line;
      return Value::boolean(test(e.name, subject, args) != e.negated);
    }
    case Expr::Op::Neg:
    case Expr::Op::Pos: {
      Value v = eval(*e.args[0], scope);
      if (v.is_undefined()) raise_undefined(v);
      const bool neg = e.op == Expr::Op::Neg;
      if (v.is_int()) {
        if (!neg) return Value::integer(v.i);
        if (v.i == INT64_MIN) int_overflow();
        return Value::integer(-v.i);
      }
      if (v.kind == Kind::Float) return Value::real(neg ? -v.f : v.f);
      fail("bad operand type for unary {}: '{}'", neg ? "-" : "+", type_name(v));
    }
    case Expr::Op::Not:
      return Value::boolean(!truthy(eval(*e.args[0], scope)));
    case Expr::Op::And: {
      Value a = eval(*e.args[0], scope);
      if (!truthy(a)) return a;
      return eval(*e.args[1], scope);
    }
    case Expr::Op::Or: {
      Value a = eval(*e.args[0], scope);
      if (truthy(a)) return a;
      return eval(*e.args[1], scope);
    }
    case Expr::Op::Binary: {
      Value a = eval(*e.args[0], scope);
      Value b = eval(*e.args[1], scope);
      line_ = e.line;
      return eval_binary(e.name, a, b);
    }
    case Expr::Op::Compare:
      return eval_compare(e, scope);
    case Expr::Op::Cond:
      if (truthy(eval(*e.args[1], scope))) return eval(*e.args[0], scope);
      if (e.args[2]) return eval(*e.args[2], scope);
      return Value::undefined(fmt::format(
          "the inline if-expression on line {} evaluated to false and no else section was defined.",
          e.line));
  }
  return Value();
}

Value Interp::eval_binary(const std::string& op, const Value& a, const Value& b) {
  if (op == "~") {
    std::string s;
    check_size((a.is_string() ? a.s->size() : 0) + (b.is_string() ? b.s->size() : 0));
    append_str(&s, a);
    append_str(&s, b);
    return make_string(std::move(s));
  }
  if (a.is_undefined()) raise_undefined(a);
  if (b.is_undefined()) raise_undefined(b);
  const bool ints = a.is_int() && b.is_int();
  const bool nums = a.is_number() && b.is_number();
  int64_t r = 0;
  if (op == "+") {
    if (ints) {
      if (add_overflows(a.i, b.i, &r)) int_overflow();
      return Value::integer(r);
    }
    if (nums) return Value::real(a.as_double() + b.as_double());
    if (a.is_string() && b.is_string()) {
      check_size(a.s->size() + b.s->size());
      std::string s;
      s.reserve(a.s->size() + b.s->size());
      s.append(*a.s).append(*b.s);
      return make_string(std::move(s));
    }
    if (a.is_list() && b.is_list() && a.tuple == b.tuple) {
      FLASHRT_CHECK(a.list->size() + b.list->size() <= kMaxItems, "list too long");
      tick(b.list->size() / 16);
      List l = *a.list;
      l.insert(l.end(), b.list->begin(), b.list->end());
      return Value::make_list(std::move(l), a.tuple);
    }
    if (a.is_string() || a.is_list())
      fail("can only concatenate {} (not \"{}\") to {}", type_name(a), type_name(b), type_name(a));
    bad_operands(op, a, b);
  }
  if (op == "-") {
    if (ints) {
      if (sub_overflows(a.i, b.i, &r)) int_overflow();
      return Value::integer(r);
    }
    if (nums) return Value::real(a.as_double() - b.as_double());
    bad_operands(op, a, b);
  }
  if (op == "*") {
    if (ints) {
      if (mul_overflows(a.i, b.i, &r)) int_overflow();
      return Value::integer(r);
    }
    if (nums) return Value::real(a.as_double() * b.as_double());
    const Value* seq = a.is_int() ? &b : &a;
    const Value* count = a.is_int() ? &a : &b;
    if (count->is_int() && (seq->is_string() || seq->is_list())) {
      const int64_t n = std::max<int64_t>(0, count->i);
      if (seq->is_string()) {
        FLASHRT_CHECK(seq->s->empty() || static_cast<uint64_t>(n) <= kMaxOutput / seq->s->size(),
                      "string too long (over {} MiB)", kMaxOutput >> 20);
        std::string s;
        s.reserve(seq->s->size() * static_cast<size_t>(n));
        for (int64_t k = 0; k < n; ++k) s += *seq->s;
        return make_string(std::move(s));
      }
      FLASHRT_CHECK(seq->list->empty() || static_cast<uint64_t>(n) <= kMaxItems / seq->list->size(),
                    "list too long");
      tick(seq->list->size() * static_cast<size_t>(n) / 16);
      List l;
      for (int64_t k = 0; k < n; ++k) l.insert(l.end(), seq->list->begin(), seq->list->end());
      return Value::make_list(std::move(l), seq->tuple);
    }
    bad_operands(op, a, b);
  }
  if (!nums) bad_operands(op, a, b);
  if (op == "/") {
    FLASHRT_CHECK(b.as_double() != 0, "division by zero");
    return Value::real(a.as_double() / b.as_double());
  }
  if (op == "//" || op == "%") {
    if (ints) {
      FLASHRT_CHECK(b.i != 0, "integer division or modulo by zero");
      if (a.i == INT64_MIN && b.i == -1) {
        if (op == "//") int_overflow();
        return Value::integer(0);
      }
      int64_t q = a.i / b.i, m = a.i % b.i;
      if (m != 0 && ((m < 0) != (b.i < 0))) {  // Python floors; C++ truncates
        --q;
        m += b.i;
      }
      return Value::integer(op == "//" ? q : m);
    }
    // Python's float_divmod.
    const double x = a.as_double(), y = b.as_double();
    FLASHRT_CHECK(y != 0, "float {} by zero", op == "%" ? "modulo" : "divmod");
    double m = std::fmod(x, y);
    double div = (x - m) / y;
    if (m != 0) {
      if ((y < 0) != (m < 0)) {
        m += y;
        div -= 1.0;
      }
    } else {
      m = std::copysign(0.0, y);
    }
    if (op == "%") return Value::real(m);
    double q;
    if (div != 0) {
      q = std::floor(div);
      if (div - q > 0.5) q += 1.0;
    } else {
      q = std::copysign(0.0, x / y);
    }
    return Value::real(q);
  }
  if (op == "**") {
    if (ints && b.i >= 0) {
      int64_t base = a.i, e = b.i, acc = 1;
      while (e > 0) {
        if (e & 1)
          if (mul_overflows(acc, base, &acc)) int_overflow();
        e >>= 1;
        if (e > 0 && mul_overflows(base, base, &base)) int_overflow();
      }
      return Value::integer(acc);
    }
    const double x = a.as_double(), y = b.as_double();
    FLASHRT_CHECK(!(x == 0 && y < 0), "0.0 cannot be raised to a negative power");
    return Value::real(std::pow(x, y));
  }
  bad_operands(op, a, b);
}

Value Interp::eval_compare(const Expr& e, const std::shared_ptr<Scope>& scope) {
  Value left = eval(*e.args[0], scope);
  for (size_t k = 0; k < e.ops.size(); ++k) {
    Value right = eval(*e.args[k + 1], scope);
    line_ = e.line;
    const std::string& op = e.ops[k];
    bool ok;
    if (op == "==") {
      ok = equals(left, right);
    } else if (op == "!=") {
      ok = !equals(left, right);
    } else if (op == "in") {
      ok = contains(right, left);
    } else if (op == "notin") {
      ok = !contains(right, left);
    } else {
      if (left.is_undefined()) raise_undefined(left);
      if (right.is_undefined()) raise_undefined(right);
      const int c = compare(left, right);
      ok = op == "<" ? c < 0 : op == "<=" ? c <= 0 : op == ">" ? c > 0 : c >= 0;
    }
    if (!ok) return Value::boolean(false);
    left = std::move(right);
  }
  return Value::boolean(true);
}

Value Interp::eval_slice(const Value& obj, const Expr& sl, const std::shared_ptr<Scope>& scope) {
  Value parts[3];
  for (int k = 0; k < 3; ++k)
    if (sl.args[static_cast<size_t>(k)]) parts[k] = eval(*sl.args[static_cast<size_t>(k)], scope);
  // jinja2 compiles slices to Python's own subscript, bypassing the sandbox's getitem: errors are
  // raised, not turned into Undefined.
  if (obj.is_undefined()) raise_undefined(obj);
  FLASHRT_CHECK(!obj.is_dict(), "unhashable type: 'slice'");
  FLASHRT_CHECK(obj.is_list() || obj.is_string(), "'{}' object is not subscriptable",
                type_name(obj));
  for (const Value& p : parts)
    FLASHRT_CHECK(p.is_undefined() || p.is_none() || p.is_int(),
                  "slice indices must be integers or None or have an __index__ method");
  const int64_t step = parts[2].is_int() ? parts[2].i : 1;
  FLASHRT_CHECK(step != 0, "slice step cannot be zero");
  std::u32string chars;
  const bool ascii = obj.is_string() && text::is_ascii(*obj.s);
  if (obj.is_string() && !ascii) chars = text::decode(*obj.s);
  const int64_t len = obj.is_list() ? static_cast<int64_t>(obj.list->size())
                      : ascii       ? static_cast<int64_t>(obj.s->size())
                                    : static_cast<int64_t>(chars.size());
  // PySlice_AdjustIndices.
  auto adjust = [&](const Value& p, int64_t dflt) {
    if (!p.is_int()) return dflt;
    int64_t x = p.i;
    if (x < 0) {
      x = x < -len ? (step < 0 ? -1 : 0) : x + len;
    } else if (x >= len) {
      x = step < 0 ? len - 1 : len;
    }
    return x;
  };
  const int64_t start = adjust(parts[0], step < 0 ? len - 1 : 0);
  const int64_t stop = adjust(parts[1], step < 0 ? -1 : len);
  std::vector<int64_t> idx;
  for (int64_t k = start; step > 0 ? k < stop : k > stop; k += step) idx.push_back(k);
  tick(idx.size() / 16);
  if (obj.is_list()) {
    List l;
    l.reserve(idx.size());
    for (int64_t k : idx) l.push_back((*obj.list)[static_cast<size_t>(k)]);
    return Value::make_list(std::move(l), obj.tuple);
  }
  std::string s;
  for (int64_t k : idx) {
    if (ascii) {
      s.push_back((*obj.s)[static_cast<size_t>(k)]);
    } else {
      text::append_utf8(&s, chars[static_cast<size_t>(k)]);
    }
  }
  return make_string(std::move(s));
}

std::optional<Value> Interp::attribute(const Value& obj, const std::string& name) {
  if (auto* ns = obj.as<Namespace>()) {
    if (const Value* v = ns->find(name)) return *v;
    return std::nullopt;
  }
  if (auto* loop = obj.as<LoopObj>()) {
    const size_t n = loop->items->size(), k = loop->index0;
    auto i64 = [](size_t x) { return Value::integer(static_cast<int64_t>(x)); };
    if (name == "index") return i64(k + 1);
    if (name == "index0") return i64(k);
    if (name == "revindex") return i64(n - k);
    if (name == "revindex0") return i64(n - k - 1);
    if (name == "first") return Value::boolean(k == 0);
    if (name == "last") return Value::boolean(k + 1 == n);
    if (name == "length") return i64(n);
    if (name == "depth") return i64(1);
    if (name == "depth0") return i64(0);
    if (name == "previtem")
      return k > 0 ? (*loop->items)[k - 1] : Value::undefined("there is no previous item");
    if (name == "nextitem")
      return k + 1 < n ? (*loop->items)[k + 1] : Value::undefined("there is no next item");
    if (name == "cycle")
      return Value::object(std::make_shared<LoopCycle>(std::static_pointer_cast<LoopObj>(obj.obj)));
    return std::nullopt;
  }
  if (obj.is_string() || obj.is_list() || obj.is_dict()) return method(obj, name);
  return std::nullopt;
}

std::optional<Value> Interp::item(const Value& obj, const Value& key) {
  if (obj.is_dict()) {
    if (const Value* v = dict_find(*obj.dict, key)) return *v;
    return std::nullopt;
  }
  if ((obj.is_list() || obj.is_string()) && key.is_int()) {
    int64_t k = key.i;
    if (obj.is_list()) {
      const auto n = static_cast<int64_t>(obj.list->size());
      if (k < 0) k += n;
      if (k < 0 || k >= n) return std::nullopt;
      return (*obj.list)[static_cast<size_t>(k)];
    }
    if (text::is_ascii(*obj.s)) {
      const auto n = static_cast<int64_t>(obj.s->size());
      if (k < 0) k += n;
      if (k < 0 || k >= n) return std::nullopt;
      return Value::string(std::string(1, (*obj.s)[static_cast<size_t>(k)]));
    }
    const std::u32string u = text::decode(*obj.s);
    const auto n = static_cast<int64_t>(u.size());
    if (k < 0) k += n;
    if (k < 0 || k >= n) return std::nullopt;
    std::string c;
    text::append_utf8(&c, u[static_cast<size_t>(k)]);
    return Value::string(std::move(c));
  }
  return std::nullopt;
}

Value Interp::getattr(const Value& obj, const std::string& name) {
  if (obj.is_undefined()) raise_undefined(obj);
  if (auto a = attribute(obj, name)) return *a;
  if (auto i = item(obj, Value::string(name))) return *i;
  return no_attribute(obj, name);
}

Value Interp::getitem(const Value& obj, const Value& key) {
  if (obj.is_undefined()) raise_undefined(obj);
  if (auto i = item(obj, key)) return *i;
  if (key.is_string())
    if (auto a = attribute(obj, *key.s)) return *a;
  return no_item(obj, key);
}

Value Interp::call(const Value& callee, CallArgs& args) {
  if (callee.is_undefined()) raise_undefined(callee);
  auto* fn = callee.as<Callable>();
  FLASHRT_CHECK(fn, "'{}' object is not callable", type_name(callee));
  DepthGuard guard(this);
  return fn->call(*this, args);
}

Template::Template(std::string_view source) : program_(parse(source)) {}
Template::~Template() = default;
Template::Template(Template&&) noexcept = default;
Template& Template::operator=(Template&&) noexcept = default;

std::string Template::render(const nlohmann::ordered_json& context,
                             const RenderOptions& options) const {
  Interp in(*program_, options);
  return in.render(context);
}

}  // namespace flashrt::jinja

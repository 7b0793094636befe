// The compile-time variable resolution of jinja2/idtracking.py, reduced to what changes a
// render: which names start out undefined in each frame (jinja_ast.h, analyze_frames).
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "tokenizer/jinja_ast.h"

namespace flashrt::jinja {

namespace {

// One frame's symbols as jinja2's Symbols tracks them: names referenced so far, names stored,
// and for each name this frame defines whether it starts undefined.
struct Symbols {
  std::set<std::string> refs;
  std::set<std::string> stores;
  std::unordered_map<std::string, bool> starts_undefined;
};

class FrameVisitor {
 public:
  explicit FrameVisitor(const std::set<std::string>& outer) : outer_(outer) {}

  void load(const std::string& n) {
    if (sym_.refs.insert(n).second) sym_.starts_undefined[n] = false;  // resolved or aliased
  }
  void store(const std::string& n) {
    sym_.stores.insert(n);
    if (sym_.refs.insert(n).second) sym_.starts_undefined[n] = outer_.count(n) == 0;
  }
  void param(const std::string& n) {
    sym_.stores.insert(n);
    sym_.refs.insert(n);
    sym_.starts_undefined[n] = false;
  }

  void expr(const Expr* e) {
    if (!e) return;
    if (e->op == Expr::Op::Name) load(e->name);
    for (const auto& a : e->args) expr(a.get());
    for (const auto& a : e->kwargs) expr(a.get());
  }

  void body(const Body& b) {
    for (const auto& s : b) stmt(*s);
  }

  // visit_If: each branch (the body, the list of elifs, the else) on a copy of the symbols.
  void if_stmt(const Stmt& s, size_t first) {
    expr(s.conds[first].get());
    const Symbols original = sym_;
    std::vector<Symbols> branches;
    auto visit = [&](auto&& fn) {
      sym_ = original;
      fn();
      branches.push_back(sym_);
    };
    visit([&] { body(s.bodies[first]); });
    visit([&] {
      // The elifs: a list of if statements of their own, with no elif or else.
      for (size_t k = first + 1; k < s.conds.size(); ++k) {
        expr(s.conds[k].get());
        const Symbols before = sym_;
        std::vector<Symbols> sub;
        sym_ = before;
        body(s.bodies[k]);
        sub.push_back(sym_);
        sub.push_back(before);
        sub.push_back(before);
        sym_ = before;
        merge(sub);
      }
    });
    visit([&] {
      if (s.bodies.size() > s.conds.size()) body(s.bodies.back());
    });
    sym_ = original;
    merge(branches);
  }

  // Symbols.branch_update (jinja2 3.1): a name first stored inside a branch is resolved from the
  // enclosing frames or the context, never left undefined.
  void merge(const std::vector<Symbols>& branches) {
    std::set<std::string> stored;
    for (const auto& b : branches)
      for (const auto& n : b.stores)
        if (!sym_.stores.count(n)) stored.insert(n);
    for (const auto& b : branches) {
      sym_.refs.insert(b.refs.begin(), b.refs.end());
      sym_.stores.insert(b.stores.begin(), b.stores.end());
      for (const auto& [n, u] : b.starts_undefined) sym_.starts_undefined[n] = u;
    }
    for (const auto& n : stored) sym_.starts_undefined[n] = false;
  }

  void stmt(const Stmt& s) {
    switch (s.type) {
      case Stmt::Type::Print:
        expr(s.expr.get());
        break;
      case Stmt::Type::If:
        if_stmt(s, 0);
        break;
      case Stmt::Type::For:
        expr(s.expr.get());  // the body and the filter are frames of their own
        break;
      case Stmt::Type::Set:
        expr(s.expr.get());
        if (!s.attr.empty()) {
          load(s.targets[0]);  // `set ns.x`: reads ns
        } else {
          for (const auto& t : s.targets) store(t);
        }
        break;
      case Stmt::Type::SetBlock:
        store(s.targets[0]);
        break;
      case Stmt::Type::Macro:
        store(s.name);
        break;
      case Stmt::Type::FilterBlock:
        expr(s.expr.get());
        break;
      case Stmt::Type::With:
        for (const auto& c : s.conds) expr(c.get());
        break;
      default:
        break;
    }
  }

  std::vector<std::string> undefined() const {
    std::vector<std::string> out;
    for (const auto& [n, u] : sym_.starts_undefined)
      if (u) out.push_back(n);
    return out;
  }
  const std::set<std::string>& refs() const { return sym_.refs; }

 private:
  const std::set<std::string>& outer_;
  Symbols sym_;
};

void frames_in(Body& body, const std::set<std::string>& outer);

// Analyzes one frame: `params` are its parameters (loop targets, macro arguments), `prelude` its
// expressions evaluated inside it (macro defaults), then its statements; then the frames nested
// in it, with this frame's names added to the enclosing ones.
std::vector<std::string> frame(const std::vector<std::string>& params,
                               const std::vector<const Expr*>& prelude, Body& body,
                               const std::set<std::string>& outer) {
  FrameVisitor v(outer);
  for (const auto& p : params) v.param(p);
  for (const Expr* e : prelude) v.expr(e);
  v.body(body);
  std::set<std::string> inner = outer;
  inner.insert(v.refs().begin(), v.refs().end());
  frames_in(body, inner);
  return v.undefined();
}

void frames_in(Body& body, const std::set<std::string>& outer) {
  for (auto& sp : body) {
    Stmt& s = *sp;
    s.undefined.clear();
    switch (s.type) {
      case Stmt::Type::If:
        for (auto& b : s.bodies) frames_in(b, outer);  // the same frame
        break;
      case Stmt::Type::For:
        s.undefined.push_back(frame(s.targets, {}, s.bodies[0], outer));
        if (s.bodies.size() > 1) s.undefined.push_back(frame({}, {}, s.bodies[1], outer));
        break;
      case Stmt::Type::Macro: {
        std::vector<const Expr*> defaults;
        for (const auto& d : s.conds)
          if (d) defaults.push_back(d.get());
        s.undefined.push_back(frame(s.targets, defaults, s.bodies[0], outer));
        break;
      }
      case Stmt::Type::With:
        s.undefined.push_back(frame(s.targets, {}, s.bodies[0], outer));
        break;
      case Stmt::Type::SetBlock:
      case Stmt::Type::FilterBlock:
      case Stmt::Type::Scope:
        s.undefined.push_back(frame({}, {}, s.bodies[0], outer));
        break;
      default:
        break;
    }
  }
}

}  // namespace

void analyze_frames(Program* program) {
  program->undefined = frame({}, {}, program->body, {});
}

}  // namespace flashrt::jinja

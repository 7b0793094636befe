// The evaluator's state for one render, shared by the statement/expression evaluator
// (jinja_eval.cpp), the filters and tests (jinja_filters.cpp) and the methods and globals
// (jinja_methods.cpp). One Interp per render: Template::render stays const and thread-safe.
#pragma once
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "tokenizer/jinja.h"
#include "tokenizer/jinja_ast.h"
#include "tokenizer/jinja_value.h"

namespace flashrt::jinja {

// Limits on what an untrusted template may make the renderer do.
inline constexpr size_t kMaxOutput = size_t{64} << 20;  // bytes of any one string
inline constexpr size_t kMaxWork = size_t{2} << 30;     // bytes of strings built, in all
inline constexpr size_t kMaxIterations = 2'000'000;     // loop and filter steps, in all
inline constexpr int kMaxDepth = 1500;                  // evaluator recursion
inline constexpr int kMaxCallDepth = 100;               // nested macro calls
inline constexpr int64_t kMaxRange = 100000;            // jinja2's sandbox MAX_RANGE
inline constexpr size_t kMaxItems = 10'000'000;         // elements of a built list

struct Scope {
  std::shared_ptr<Scope> parent;
  std::vector<std::pair<std::string, Value>> vars;
  const Value* find(std::string_view name) const;
  void set(const std::string& name, Value v);
};

// Binds call arguments to parameter names as Python does (positional, then by keyword).
class Params {
 public:
  Params(const char* fn, const CallArgs& args, std::initializer_list<const char*> names);
  const Value* get(size_t k) const { return slots_[k]; }
  const Value& get_or(size_t k, const Value& dflt) const { return slots_[k] ? *slots_[k] : dflt; }
  int64_t integer(size_t k, int64_t dflt) const;
  bool boolean(size_t k, bool dflt) const;
  std::string string(size_t k, const std::string& dflt) const;
  bool has(size_t k) const { return slots_[k] && !slots_[k]->is_none(); }

 private:
  const char* fn_;
  std::vector<const Value*> slots_;
  std::vector<const char*> names_;
};

int64_t to_int(const Value& v, const char* what);  // an int or bool, else a TypeError

class Interp {
 public:
  Interp(const Program& program, const RenderOptions& options);
  ~Interp();

  std::string render(const nlohmann::ordered_json& context);

  // Evaluation services for the builtins.
  Value call(const Value& callee, CallArgs& args);
  Value getattr(const Value& obj, const std::string& name);
  Value getitem(const Value& obj, const Value& key);
  Value filter(const std::string& name, const Value& subject, CallArgs& args);
  bool test(const std::string& name, const Value& subject, CallArgs& args);
  bool has_filter(const std::string& name) const;
  bool has_test(const std::string& name) const;
  // A method of a str, list or dict (bound as `value.name`); nullopt when it has none.
  std::optional<Value> method(const Value& self, const std::string& name);
  Value global(const std::string& name);  // a global function; Undefined when none
  // The items a for loop (or list()) sees: characters of a str, keys of a dict.
  std::shared_ptr<const List> iterate(const Value& v);

  void tick(size_t n = 1);           // counts loop/filter steps against kMaxIterations
  void check_size(size_t bytes);     // a string about to be built
  Value make_string(std::string s);  // counts the bytes against kMaxWork
  Namespace* new_namespace(std::shared_ptr<Namespace>* holder);

  const RenderOptions& options;

 private:
  enum class Flow { Normal, Break, Continue };
  friend struct MacroFn;
  struct DepthGuard;

  Flow exec(const Body& body, const std::shared_ptr<Scope>& scope, std::string* out);
  Flow exec_stmt(const Stmt& s, const std::shared_ptr<Scope>& scope, std::string* out);
  void exec_for(const Stmt& s, const std::shared_ptr<Scope>& scope, std::string* out);
  void assign(const Stmt& s, Scope& scope, const Value& v);
  Value eval(const Expr& e, const std::shared_ptr<Scope>& scope);
  Value eval_binary(const std::string& op, const Value& a, const Value& b);
  Value eval_compare(const Expr& e, const std::shared_ptr<Scope>& scope);
  Value eval_slice(const Value& obj, const Expr& slice, const std::shared_ptr<Scope>& scope);
  CallArgs eval_args(const Expr& e, size_t first, const std::shared_ptr<Scope>& scope);
  Value lookup(const std::string& name, const Scope& scope);
  std::optional<Value> attribute(const Value& obj, const std::string& name);
  std::optional<Value> item(const Value& obj, const Value& key);
  void append_out(std::string* out, std::string_view s);

  const Program& program_;
  std::shared_ptr<Scope> root_;
  std::vector<std::shared_ptr<Namespace>> namespaces_;  // cleared at the end: breaks cycles
  Value filter_subject_;  // the body of a {% filter %} or {% set %} block
  size_t iterations_ = 0;
  size_t work_ = 0;
  int depth_ = 0;
  int call_depth_ = 0;
  int line_ = 0;
};

}  // namespace flashrt::jinja

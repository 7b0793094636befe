// The values a chat template computes with: Python's None, bool, int, float, str, list, tuple and
// dict, plus jinja2's Undefined, namespaces, the loop object and callables. Containers are
// immutable and shared (copying a value is cheap); only namespaces change, through `set ns.x`.
// Every container records its nesting depth, capped, so the recursive operations on values
// (printing, JSON, comparison, destruction) stay within the stack whatever a template builds.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace flashrt::jinja {

struct Value;
using List = std::vector<Value>;
using Dict = std::vector<std::pair<Value, Value>>;  // insertion-ordered, as Python's dict

enum class Kind : uint8_t {
  Undefined,
  None,
  Bool,
  Int,
  Float,
  String,
  List,  // also tuples (Value::tuple)
  Dict,
  Object,  // a namespace, a loop object or a callable (Object::kind)
};

inline constexpr int kMaxValueDepth = 200;

class Interp;
struct CallArgs;

// Namespaces, loop objects and callables: the values that are not plain data.
struct Object {
  enum class Type : uint8_t { Namespace, Loop, Callable };
  explicit Object(Type t) : type(t) {}
  virtual ~Object() = default;
  const Type type;
};

struct Value {
  Kind kind = Kind::Undefined;
  bool tuple = false;   // a List that Python would print as a tuple
  bool unsafe = false;  // an Undefined that stands for an attribute the sandbox refuses
  uint16_t depth = 0;   // container nesting: 0 for scalars
  int64_t i = 0;        // Bool and Int
  double f = 0;         // Float
  std::shared_ptr<const std::string> s;  // String; for Undefined, why it is undefined
  std::shared_ptr<const List> list;
  std::shared_ptr<const Dict> dict;
  std::shared_ptr<Object> obj;

  static Value undefined(std::string hint);
  static Value unsafe_attr(std::string message);  // using it raises the sandbox's SecurityError
  static Value none();
  static Value boolean(bool b);
  static Value integer(int64_t v);
  static Value real(double v);
  static Value string(std::string v);
  static Value string(std::shared_ptr<const std::string> v);
  static Value make_list(List v, bool tuple = false);  // throws past kMaxValueDepth
  static Value make_dict(Dict v);
  static Value object(std::shared_ptr<Object> o);

  bool is_undefined() const { return kind == Kind::Undefined; }
  bool is_none() const { return kind == Kind::None; }
  bool is_string() const { return kind == Kind::String; }
  bool is_list() const { return kind == Kind::List; }
  bool is_dict() const { return kind == Kind::Dict; }
  bool is_number() const { return kind == Kind::Int || kind == Kind::Float || kind == Kind::Bool; }
  bool is_int() const { return kind == Kind::Int || kind == Kind::Bool; }  // Python: bool is an int
  const std::string& str() const { return *s; }
  double as_double() const { return kind == Kind::Float ? f : static_cast<double>(i); }
  template <class T>
  T* as() const {
    return kind == Kind::Object ? dynamic_cast<T*>(obj.get()) : nullptr;
  }
};

// A namespace(): the one mutable value, so that a loop body can carry state out of the loop.
struct Namespace : Object {
  Namespace() : Object(Type::Namespace) {}
  std::vector<std::pair<std::string, Value>> attrs;
  const Value* find(std::string_view name) const;
  void set(const std::string& name, Value v);
};

struct CallArgs {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;
  const Value* kwarg(std::string_view name) const;
};

struct Callable : Object {
  explicit Callable(std::string n) : Object(Type::Callable), name(std::move(n)) {}
  virtual Value call(Interp& in, CallArgs& args) const = 0;
  std::string name;
};

// Conversions from the render context (ordered_json keeps the caller's key order).
Value from_json(const nlohmann::ordered_json& j, int depth = 0);

bool truthy(const Value& v);
std::string type_name(const Value& v);  // Python's type name: 'str', 'int', 'NoneType', ...
std::string format_float(double d);     // Python's repr(float): 1.0, 1e-05, 1e+16, inf, nan
std::string to_str(const Value& v);     // Python's str(); Undefined gives ""
void append_str(std::string* out, const Value& v);
std::string repr(const Value& v);  // Python's repr()
std::string repr_string(std::string_view s);

struct JsonOptions {
  std::string indent;  // used when has_indent
  bool has_indent = false;
  std::string item_sep = ", ", key_sep = ": ";
  bool sort_keys = false;
};
// json.dumps(v, ensure_ascii=False, ...); throws for values JSON cannot hold (Undefined, ...).
std::string to_json(const Value& v, const JsonOptions& o);

bool equals(const Value& a, const Value& b);
// <0, 0, >0 as Python orders them; throws a TypeError-like Error for unorderable types.
int compare(const Value& a, const Value& b);

const Value* dict_find(const Dict& d, const Value& key);
const Value* dict_find(const Dict& d, std::string_view key);
// Python's `in`: substring, list element or dict key.
bool contains(const Value& container, const Value& item);

}  // namespace flashrt::jinja

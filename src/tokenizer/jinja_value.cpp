#include "tokenizer/jinja_value.h"

#include <utf8proc.h>

#include <algorithm>
#include <charconv>
#include <cmath>

#include "core/error.h"
#include "tokenizer/jinja_text.h"

namespace flashrt::jinja {

Value Value::undefined(std::string hint) {
  Value v;
  v.s = std::make_shared<const std::string>(std::move(hint));
  return v;
}

Value Value::unsafe_attr(std::string message) {
  Value v = undefined(std::move(message));
  v.unsafe = true;
  return v;
}

Value Value::none() {
  Value v;
  v.kind = Kind::None;
  return v;
}

Value Value::boolean(bool b) {
  Value v;
  v.kind = Kind::Bool;
  v.i = b ? 1 : 0;
  return v;
}

Value Value::integer(int64_t x) {
  Value v;
  v.kind = Kind::Int;
  v.i = x;
  return v;
}

Value Value::real(double x) {
  Value v;
  v.kind = Kind::Float;
  v.f = x;
  return v;
}

Value Value::string(std::string x) {
  return string(std::make_shared<const std::string>(std::move(x)));
}

Value Value::string(std::shared_ptr<const std::string> x) {
  Value v;
  v.kind = Kind::String;
  v.s = std::move(x);
  return v;
}

namespace {
uint16_t child_depth(const Value& v) {
  FLASHRT_CHECK(v.depth < kMaxValueDepth, "value nested too deeply (over {} levels)",
                kMaxValueDepth);
  return static_cast<uint16_t>(v.depth + 1);
}
}  // namespace

Value Value::make_list(List x, bool is_tuple) {
  Value v;
  v.kind = Kind::List;
  v.tuple = is_tuple;
  v.depth = 1;
  for (const Value& e : x) v.depth = std::max(v.depth, child_depth(e));
  v.list = std::make_shared<const List>(std::move(x));
  return v;
}

Value Value::make_dict(Dict x) {
  Value v;
  v.kind = Kind::Dict;
  v.depth = 1;
  for (const auto& [k, e] : x) v.depth = std::max({v.depth, child_depth(k), child_depth(e)});
  v.dict = std::make_shared<const Dict>(std::move(x));
  return v;
}

Value Value::object(std::shared_ptr<Object> o) {
  Value v;
  v.kind = Kind::Object;
  v.obj = std::move(o);
  return v;
}

const Value* Namespace::find(std::string_view name) const {
  for (const auto& [k, v] : attrs)
    if (k == name) return &v;
  return nullptr;
}

void Namespace::set(const std::string& name, Value v) {
  for (auto& [k, old] : attrs)
    if (k == name) {
      old = std::move(v);
      return;
    }
  attrs.emplace_back(name, std::move(v));
}

const Value* CallArgs::kwarg(std::string_view name) const {
  for (const auto& [k, v] : kw)
    if (k == name) return &v;
  return nullptr;
}

Value from_json(const nlohmann::ordered_json& j, int depth) {
  FLASHRT_CHECK(depth < kMaxValueDepth, "chat template context nested too deeply (over {} levels)",
                kMaxValueDepth);
  using T = nlohmann::ordered_json::value_t;
  switch (j.type()) {
    case T::null:
      return Value::none();
    case T::boolean:
      return Value::boolean(j.get<bool>());
    case T::number_integer:
      return Value::integer(j.get<int64_t>());
    case T::number_unsigned: {
      const auto u = j.get<uint64_t>();
      // Python ints are unbounded; past int64 the nearest double is the closest we hold.
      if (u > static_cast<uint64_t>(INT64_MAX)) return Value::real(static_cast<double>(u));
      return Value::integer(static_cast<int64_t>(u));
    }
    case T::number_float:
      return Value::real(j.get<double>());
    case T::string:
      return Value::string(j.get<std::string>());
    case T::array: {
      List l;
      l.reserve(j.size());
      for (const auto& e : j) l.push_back(from_json(e, depth + 1));
      return Value::make_list(std::move(l));
    }
    case T::object: {
      Dict d;
      d.reserve(j.size());
      for (const auto& [k, e] : j.items())
        d.emplace_back(Value::string(k), from_json(e, depth + 1));
      return Value::make_dict(std::move(d));
    }
    default:
      fail("chat template context holds a value JSON cannot express");
  }
}

bool truthy(const Value& v) {
  switch (v.kind) {
    case Kind::Undefined:
    case Kind::None:
      return false;
    case Kind::Bool:
    case Kind::Int:
      return v.i != 0;
    case Kind::Float:
      return v.f != 0;
    case Kind::String:
      return !v.s->empty();
    case Kind::List:
      return !v.list->empty();
    case Kind::Dict:
      return !v.dict->empty();
    case Kind::Object:
      return true;
  }
  return false;
}

std::string type_name(const Value& v) {
  switch (v.kind) {
    case Kind::Undefined:
      return "Undefined";
    case Kind::None:
      return "NoneType";
    case Kind::Bool:
      return "bool";
    case Kind::Int:
      return "int";
    case Kind::Float:
      return "float";
    case Kind::String:
      return "str";
    case Kind::List:
      return v.tuple ? "tuple" : "list";
    case Kind::Dict:
      return "dict";
    case Kind::Object:
      switch (v.obj->type) {
        case Object::Type::Namespace:
          return "Namespace";
        case Object::Type::Loop:
          return "LoopContext";
        case Object::Type::Callable:
          return "function";
      }
  }
  return "object";
}

std::string format_float(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
  // The shortest digits that round-trip (what Python's repr picks), then Python's layout:
  // positional when the decimal point falls within 16 digits of the start, exponent otherwise.
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<size_t>(r.ptr - buf));
  std::string out;
  if (sci.front() == '-') {
    out.push_back('-');
    sci.remove_prefix(1);
  }
  const size_t e_pos = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e_pos))
    if (c != '.') digits.push_back(c);
  int exp = 0;
  std::from_chars(sci.data() + e_pos + 1 + (sci[e_pos + 1] == '+'), sci.data() + sci.size(), exp);
  const int decpt = exp + 1;
  const int n = static_cast<int>(digits.size());
  if (decpt > -4 && decpt <= 16) {
    if (decpt <= 0) {
      out += "0." + std::string(static_cast<size_t>(-decpt), '0') + digits;
    } else if (decpt >= n) {
      out += digits + std::string(static_cast<size_t>(decpt - n), '0') + ".0";
    } else {
      out += digits.substr(0, static_cast<size_t>(decpt)) + "." +
             digits.substr(static_cast<size_t>(decpt));
    }
    return out;
  }
  out.push_back(digits[0]);
  if (n > 1) out += "." + digits.substr(1);
  out += exp < 0 ? "e-" : "e+";
  const int a = std::abs(exp);
  if (a < 10) out.push_back('0');
  out += std::to_string(a);
  return out;
}

namespace {

bool printable(char32_t c) {
  if (c < 0x80) return c >= 0x20 && c < 0x7f;
  if (c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return false;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
    case UTF8PROC_CATEGORY_CN:
    case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP:
    case UTF8PROC_CATEGORY_ZS:
      return false;
    default:
      return true;
  }
}

void append_repr(std::string* out, const Value& v);

void append_items(std::string* out, const Value& v) {
  const List& l = *v.list;
  out->push_back(v.tuple ? '(' : '[');
  for (size_t k = 0; k < l.size(); ++k) {
    if (k) out->append(", ");
    append_repr(out, l[k]);
  }
  if (v.tuple && l.size() == 1) out->push_back(',');
  out->push_back(v.tuple ? ')' : ']');
}

void append_dict(std::string* out, const Value& v) {
  out->push_back('{');
  bool first = true;
  for (const auto& [k, e] : *v.dict) {
    if (!first) out->append(", ");
    first = false;
    append_repr(out, k);
    out->append(": ");
    append_repr(out, e);
  }
  out->push_back('}');
}

void append_repr(std::string* out, const Value& v) {
  switch (v.kind) {
    case Kind::String:
      out->append(repr_string(*v.s));
      return;
    case Kind::Undefined:
      out->append("Undefined");
      return;
    default:
      append_str(out, v);
  }
}

}  // namespace

std::string repr_string(std::string_view s) {
  const bool dq = s.find('\'') != std::string_view::npos && s.find('"') == std::string_view::npos;
  const char q = dq ? '"' : '\'';
  std::string out(1, q);
  for (char32_t c : text::decode(s)) {
    if (c == static_cast<char32_t>(q) || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (printable(c)) {
      text::append_utf8(&out, c);
    } else if (c < 0x100) {
      out += fmt::format("\\x{:02x}", static_cast<unsigned>(c));
    } else if (c < 0x10000) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
    } else {
      out += fmt::format("\\U{:08x}", static_cast<unsigned>(c));
    }
  }
  out.push_back(q);
  return out;
}

void append_str(std::string* out, const Value& v) {
  switch (v.kind) {
    case Kind::Undefined:
      return;
    case Kind::None:
      out->append("None");
      return;
    case Kind::Bool:
      out->append(v.i ? "True" : "False");
      return;
    case Kind::Int:
      out->append(std::to_string(v.i));
      return;
    case Kind::Float:
      out->append(format_float(v.f));
      return;
    case Kind::String:
      out->append(*v.s);
      return;
    case Kind::List:
      append_items(out, v);
      return;
    case Kind::Dict:
      append_dict(out, v);
      return;
    case Kind::Object:
      out->append("<" + type_name(v) + ">");
      return;
  }
}

std::string to_str(const Value& v) {
  if (v.kind == Kind::String) return *v.s;
  std::string out;
  append_str(&out, v);
  return out;
}

std::string repr(const Value& v) {
  std::string out;
  append_repr(&out, v);
  return out;
}

namespace {

void json_string(std::string* out, std::string_view s) {
  out->push_back('"');
  for (char c : s) {
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      case '\b':
        out->append("\\b");
        break;
      case '\f':
        out->append("\\f");
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20)
          out->append(fmt::format("\\u{:04x}", static_cast<unsigned>(c)));
        else
          out->push_back(c);
    }
  }
  out->push_back('"');
}

std::string json_float(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d < 0 ? "-Infinity" : "Infinity";
  return format_float(d);
}

void json_key(std::string* out, const Value& k) {
  switch (k.kind) {
    case Kind::String:
      json_string(out, *k.s);
      return;
    case Kind::Int:
      json_string(out, std::to_string(k.i));
      return;
    case Kind::Bool:
      json_string(out, k.i ? "true" : "false");
      return;
    case Kind::None:
      json_string(out, "null");
      return;
    case Kind::Float:
      json_string(out, json_float(k.f));
      return;
    default:
      fail("keys must be str, int, float, bool or None, not {}", type_name(k));
  }
}

void json_value(std::string* out, const Value& v, const JsonOptions& o, int level) {
  auto newline = [&](int lvl) {
    if (!o.has_indent) return;
    out->push_back('\n');
    for (int k = 0; k < lvl; ++k) out->append(o.indent);
  };
  switch (v.kind) {
    case Kind::None:
      out->append("null");
      return;
    case Kind::Bool:
      out->append(v.i ? "true" : "false");
      return;
    case Kind::Int:
      out->append(std::to_string(v.i));
      return;
    case Kind::Float:
      out->append(json_float(v.f));
      return;
    case Kind::String:
      json_string(out, *v.s);
      return;
    case Kind::List: {
      if (v.list->empty()) {
        out->append("[]");
        return;
      }
      out->push_back('[');
      bool first = true;
      for (const Value& e : *v.list) {
        if (!first) out->append(o.item_sep);
        first = false;
        newline(level + 1);
        json_value(out, e, o, level + 1);
      }
      newline(level);
      out->push_back(']');
      return;
    }
    case Kind::Dict: {
      if (v.dict->empty()) {
        out->append("{}");
        return;
      }
      std::vector<const std::pair<Value, Value>*> items;
      for (const auto& kv : *v.dict) items.push_back(&kv);
      if (o.sort_keys)
        std::stable_sort(items.begin(), items.end(),
                         [](auto* a, auto* b) { return compare(a->first, b->first) < 0; });
      out->push_back('{');
      bool first = true;
      for (const auto* kv : items) {
        if (!first) out->append(o.item_sep);
        first = false;
        newline(level + 1);
        json_key(out, kv->first);
        out->append(o.key_sep);
        json_value(out, kv->second, o, level + 1);
      }
      newline(level);
      out->push_back('}');
      return;
    }
    default:
      fail("Object of type {} is not JSON serializable", type_name(v));
  }
}

}  // namespace

std::string to_json(const Value& v, const JsonOptions& o) {
  std::string out;
  json_value(&out, v, o, 0);
  return out;
}

bool equals(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.kind == Kind::Float || b.kind == Kind::Float) return a.as_double() == b.as_double();
    return a.i == b.i;
  }
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case Kind::Undefined:
    case Kind::None:
      return true;
    case Kind::String:
      return a.s == b.s || *a.s == *b.s;
    case Kind::List: {
      if (a.tuple != b.tuple || a.list->size() != b.list->size()) return false;
      for (size_t k = 0; k < a.list->size(); ++k)
        if (!equals((*a.list)[k], (*b.list)[k])) return false;
      return true;
    }
    case Kind::Dict: {
      if (a.dict->size() != b.dict->size()) return false;
      for (const auto& [k, v] : *a.dict) {
        const Value* w = dict_find(*b.dict, k);
        if (!w || !equals(v, *w)) return false;
      }
      return true;
    }
    case Kind::Object:
      return a.obj == b.obj;
    default:
      return false;
  }
}

int compare(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.kind == Kind::Float || b.kind == Kind::Float) {
      const double x = a.as_double(), y = b.as_double();
      return x < y ? -1 : x > y ? 1 : 0;
    }
    return a.i < b.i ? -1 : a.i > b.i ? 1 : 0;
  }
  if (a.is_string() && b.is_string()) {
    const int c = a.s->compare(*b.s);
    return c < 0 ? -1 : c > 0 ? 1 : 0;
  }
  if (a.is_list() && b.is_list() && a.tuple == b.tuple) {
    const List &x = *a.list, &y = *b.list;
    for (size_t k = 0; k < x.size() && k < y.size(); ++k)
      if (!equals(x[k], y[k])) return compare(x[k], y[k]);
    return x.size() < y.size() ? -1 : x.size() > y.size() ? 1 : 0;
  }
  fail("'<' not supported between instances of '{}' and '{}'", type_name(a), type_name(b));
}

const Value* dict_find(const Dict& d, const Value& key) {
  if (key.is_string()) return dict_find(d, std::string_view(*key.s));
  for (const auto& [k, v] : d)
    if (equals(k, key)) return &v;
  return nullptr;
}

const Value* dict_find(const Dict& d, std::string_view key) {
  for (const auto& [k, v] : d)
    if (k.is_string() && *k.s == key) return &v;
  return nullptr;
}

bool contains(const Value& c, const Value& item) {
  switch (c.kind) {
    case Kind::String:
      FLASHRT_CHECK(item.is_string(), "'in <string>' requires string as left operand, not {}",
                    type_name(item));
      return c.s->find(*item.s) != std::string::npos;
    case Kind::List:
      for (const Value& e : *c.list)
        if (equals(e, item)) return true;
      return false;
    case Kind::Dict:
      return dict_find(*c.dict, item) != nullptr;
    case Kind::Undefined:
      return false;
    default:
      fail("argument of type '{}' is not iterable", type_name(c));
  }
}

}  // namespace flashrt::jinja

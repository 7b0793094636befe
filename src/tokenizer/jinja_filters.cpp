// jinja2's built-in filters and tests (jinja2/filters.py, jinja2/tests.py) with transformers'
// tojson, over the values of jinja_value.h.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "tokenizer/jinja_interp.h"
#include "tokenizer/jinja_text.h"

namespace flashrt::jinja {

namespace {

const char* const kFilters[] = {
    "abs",      "attr",     "batch",  "capitalize", "center",     "count",      "d",
    "default",  "dictsort", "e",      "escape",     "first",      "float",      "forceescape",
    "indent",   "int",      "items",  "join",       "last",       "length",     "list",
    "lower",    "map",      "max",    "min",        "reject",     "rejectattr", "replace",
    "reverse",  "round",    "safe",   "select",     "selectattr", "sort",       "string",
    "sum",      "title",    "tojson", "trim",       "truncate",   "unique",     "upper",
    "wordcount"};

const char* const kTests[] = {
    "boolean",  "callable", "defined", "divisibleby", "eq",   "equalto",   "==",     "escaped",
    "even",     "false",    "filter",  "float",       "ge",   ">=",        "gt",     "greaterthan",
    ">",        "in",       "integer", "iterable",    "le",   "<=",        "lower",  "lt",
    "lessthan", "<",        "mapping", "ne",          "!=",   "none",      "number", "odd",
    "sameas",   "sequence", "string",  "test",        "true", "undefined", "upper"};

bool known(const char* const* names, size_t n, const std::string& name) {
  for (size_t k = 0; k < n; ++k)
    if (name == names[k]) return true;
  return false;
}

// `attribute` of jinja2's make_attrgetter: dotted, digits index lists.
Value attr_path(Interp& in, const Value& item, const Value& attribute) {
  if (attribute.is_int()) return in.getitem(item, attribute);
  Value v = item;
  const std::string path = to_str(attribute);
  size_t b = 0;
  while (true) {
    const size_t e = path.find('.', b);
    const std::string part = path.substr(b, e == std::string::npos ? std::string::npos : e - b);
    const bool digits = !part.empty() && std::all_of(part.begin(), part.end(),
                                                     [](char c) { return c >= '0' && c <= '9'; });
    v = in.getitem(v, digits && part.size() < 18 ? Value::integer(std::atoll(part.c_str()))
                                                 : Value::string(part));
    if (e == std::string::npos) return v;
    b = e + 1;
  }
}

Value ignore_case(const Value& v) {
  return v.is_string() ? Value::string(text::lower(*v.s)) : v;
}

Value length(const Value& v) {
  switch (v.kind) {
    case Kind::String:
      return Value::integer(static_cast<int64_t>(text::length(*v.s)));
    case Kind::List:
      return Value::integer(static_cast<int64_t>(v.list->size()));
    case Kind::Dict:
      return Value::integer(static_cast<int64_t>(v.dict->size()));
    case Kind::Undefined:
      return Value::integer(0);
    default:
      fail("object of type '{}' has no len()", type_name(v));
  }
}

std::string html_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

// Python's int(str): optional sign, digits with single underscores, whitespace around.
bool parse_int(std::string s, int base, int64_t* out) {
  s = text::strip(s, nullptr, true, true);
  std::string d;
  size_t k = 0;
  bool neg = false;
  if (k < s.size() && (s[k] == '+' || s[k] == '-')) neg = s[k++] == '-';
  if (base == 16 && s.size() > k + 1 && s[k] == '0' && (s[k + 1] | 0x20) == 'x') k += 2;
  if (base == 8 && s.size() > k + 1 && s[k] == '0' && (s[k + 1] | 0x20) == 'o') k += 2;
  if (base == 2 && s.size() > k + 1 && s[k] == '0' && (s[k + 1] | 0x20) == 'b') k += 2;
  for (; k < s.size(); ++k) {
    if (s[k] == '_' && !d.empty() && k + 1 < s.size() && s[k + 1] != '_') continue;
    d.push_back(s[k]);
  }
  if (d.empty() || base < 2 || base > 36) return false;
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(d.c_str(), &end, base);
  if (*end || errno == ERANGE || d[0] == '-' || d[0] == '+' || d[0] == ' ') return false;
  *out = neg ? -v : v;
  return true;
}

// Python's float(str): also inf, nan, with whitespace around.
bool parse_float(const std::string& str, double* out) {
  const std::string s = text::lower(text::strip(str, nullptr, true, true));
  if (s.empty()) return false;
  std::string d;
  for (size_t k = 0; k < s.size(); ++k) {
    if (s[k] == '_' && k > 0 && k + 1 < s.size() &&
        std::isdigit(static_cast<unsigned char>(s[k - 1])) &&
        std::isdigit(static_cast<unsigned char>(s[k + 1])))
      continue;
    d.push_back(s[k]);
  }
  const std::string body = d[0] == '+' || d[0] == '-' ? d.substr(1) : d;
  if (body == "inf" || body == "infinity" || body == "nan") {
    const double v = body == "nan" ? NAN : INFINITY;
    *out = d[0] == '-' ? -v : v;
    return true;
  }
  if (body.empty() || body.find_first_not_of("0123456789.e+-") != std::string::npos) return false;
  char* end = nullptr;
  *out = std::strtod(d.c_str(), &end);
  return *end == 0;
}

// Python's round(x, n) for floats: correctly rounded, ties to even (printf rounds the exact
// binary value the same way).
double round_float(double x, int64_t n) {
  if (!std::isfinite(x)) return x;
  if (n >= 0) {
    if (n > 300) return x;
    char buf[512];
    std::snprintf(buf, sizeof buf, "%.*f", static_cast<int>(n), x);
    return std::strtod(buf, nullptr);
  }
  if (n < -308) return 0.0 * x;
  const double p = std::pow(10.0, static_cast<double>(-n));
  const double y = x / p;
  double r = std::nearbyint(y);  // ties to even under the default rounding mode
  return r * p;
}

std::string indent(const std::string& s0, const std::string& ind, bool first, bool blank,
                   Interp& in) {
  const std::string s = s0 + "\n";  // jinja2's quirk, so that splitlines keeps a last empty line
  const std::vector<std::string> lines = text::splitlines(s, false);
  size_t total = s.size();
  for (size_t k = 0; k < lines.size(); ++k) total += ind.size() + 1;
  in.check_size(total);
  std::string rv;
  if (blank) {
    for (size_t k = 0; k < lines.size(); ++k) {
      if (k) rv += "\n" + ind;
      rv += lines[k];
    }
  } else {
    rv = lines.empty() ? "" : lines[0];
    for (size_t k = 1; k < lines.size(); ++k) {
      rv += "\n";
      if (!lines[k].empty()) rv += ind;
      rv += lines[k];
    }
  }
  if (first) rv = ind + rv;
  return rv;
}

std::string center(const std::string& s, int64_t width, Interp& in) {
  const auto len = static_cast<int64_t>(text::length(s));
  if (width <= len) return s;
  in.check_size(static_cast<size_t>(width - len) + s.size());
  const int64_t pad = width - len;
  const int64_t left = pad / 2 + (pad & width & 1);
  return std::string(static_cast<size_t>(left), ' ') + s +
         std::string(static_cast<size_t>(pad - left), ' ');
}

// jinja2's do_title: words start after runs of whitespace, '-', '(', '{', '[' and '<'.
std::string jinja_title(const std::string& s) {
  std::string out;
  bool start = true;
  for (char32_t c : text::decode(s)) {
    const bool sep = text::is_space(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<';
    if (sep) {
      text::append_utf8(&out, c);
      start = true;
    } else {
      text::append_utf8(&out, start ? text::to_upper(c) : text::to_lower(c));
      start = false;
    }
  }
  return out;
}

std::string ensure_ascii(const std::string& json) {
  std::string out;
  for (char32_t c : text::decode(json)) {
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
    } else if (c < 0x10000) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
    } else {
      const char32_t v = c - 0x10000;
      out += fmt::format("\\u{:04x}\\u{:04x}", 0xd800 + (v >> 10), 0xdc00 + (v & 0x3ff));
    }
  }
  return out;
}

Value sequence_of(Interp& in, const Value& v) {
  return Value::make_list(*in.iterate(v));
}

}  // namespace

bool Interp::has_filter(const std::string& name) const {
  return known(kFilters, std::size(kFilters), name);
}

bool Interp::has_test(const std::string& name) const {
  return known(kTests, std::size(kTests), name);
}

Value Interp::filter(const std::string& name, const Value& v, CallArgs& args) {
  const Value none = Value::none();
  if (name == "tojson") {
    // transformers' tojson: json.dumps(x, ensure_ascii=False, indent=..., separators=...,
    // sort_keys=...), not jinja2's HTML-safe one.
    Params p("tojson", args, {"ensure_ascii", "indent", "separators", "sort_keys"});
    JsonOptions o;
    if (p.has(1)) {
      const Value& ind = *p.get(1);
      o.has_indent = true;
      if (ind.is_int()) {
        FLASHRT_CHECK(ind.i <= 1024, "tojson indent too large");
        o.indent = std::string(static_cast<size_t>(std::max<int64_t>(0, ind.i)), ' ');
      } else {
        o.indent = to_str(ind);
      }
      o.item_sep = ",";
    }
    if (p.has(2)) {
      const auto seps = iterate(*p.get(2));
      FLASHRT_CHECK(seps->size() == 2, "tojson separators must be a pair of strings");
      o.item_sep = to_str((*seps)[0]);
      o.key_sep = to_str((*seps)[1]);
    }
    o.sort_keys = p.boolean(3, false);
    std::string j = to_json(v, o);
    if (p.boolean(0, false)) j = ensure_ascii(j);
    return make_string(std::move(j));
  }
  if (name == "trim") {
    Params p("trim", args, {"chars"});
    const std::string chars = p.has(0) ? to_str(*p.get(0)) : "";
    return make_string(text::strip(to_str(v), p.has(0) ? &chars : nullptr, true, true));
  }
  if (name == "length" || name == "count") {
    Params p(name.c_str(), args, {});
    return length(v);
  }
  if (name == "default" || name == "d") {
    Params p(name.c_str(), args, {"default_value", "boolean"});
    const bool use = v.is_undefined() || (p.boolean(1, false) && !truthy(v));
    if (!use) return v;
    return p.get(0) ? *p.get(0) : Value::string("");
  }
  if (name == "first" || name == "last") {
    Params p(name.c_str(), args, {});
    const auto items = iterate(v);
    if (items->empty())
      return Value::undefined(name == "first" ? "No first item, sequence was empty."
                                              : "No last item, sequence was empty.");
    return name == "first" ? items->front() : items->back();
  }
  if (name == "lower" || name == "upper" || name == "capitalize" || name == "title") {
    Params p(name.c_str(), args, {});
    const std::string s = to_str(v);
    if (name == "lower") return make_string(text::lower(s));
    if (name == "upper") return make_string(text::upper(s));
    if (name == "capitalize") return make_string(text::capitalize(s));
    return make_string(jinja_title(s));
  }
  if (name == "replace") {
    Params p("replace", args, {"old", "new", "count"});
    FLASHRT_CHECK(p.get(0) && p.get(1), "replace() needs the old and the new string");
    return make_string(text::replace(to_str(v), to_str(*p.get(0)), to_str(*p.get(1)),
                                     p.has(2) ? p.integer(2, -1) : -1, kMaxOutput));
  }
  if (name == "join") {
    Params p("join", args, {"d", "attribute"});
    const std::string sep = p.string(0, "");
    const auto items = iterate(v);
    std::string out;
    size_t k = 0;
    for (const Value& item : *items) {
      tick();
      if (k++) out += sep;
      append_str(&out, p.has(1) ? attr_path(*this, item, *p.get(1)) : item);
      check_size(out.size());
    }
    return make_string(std::move(out));
  }
  if (name == "list") {
    Params p("list", args, {});
    return sequence_of(*this, v);
  }
  if (name == "string") {
    Params p("string", args, {});
    return v.is_string() ? v : make_string(to_str(v));
  }
  if (name == "safe") {
    Params p("safe", args, {});
    return v.is_string() ? v : make_string(to_str(v));
  }
  if (name == "escape" || name == "e" || name == "forceescape") {
    Params p(name.c_str(), args, {});
    return make_string(html_escape(to_str(v)));
  }
  if ((name == "int" || name == "float") && v.is_undefined()) throw Error(*v.s);
  if (name == "int") {
    Params p("int", args, {"default", "base"});
    const Value dflt = p.get(0) ? *p.get(0) : Value::integer(0);
    const int64_t base = p.integer(1, 10);
    int64_t i;
    double d;
    if (v.is_string()) {
      if (parse_int(*v.s, static_cast<int>(base), &i)) return Value::integer(i);
      if (!parse_float(*v.s, &d) || std::isnan(d)) return dflt;
    } else if (v.is_int()) {
      return Value::integer(v.i);
    } else if (v.kind == Kind::Float) {
      d = v.f;
      if (std::isnan(d)) return dflt;
    } else {
      return dflt;
    }
    FLASHRT_CHECK(std::isfinite(d), "cannot convert float infinity to integer");
    FLASHRT_CHECK(std::fabs(d) < 9.2e18, "integer overflow (past 64 bits)");
    return Value::integer(static_cast<int64_t>(d));
  }
  if (name == "float") {
    Params p("float", args, {"default"});
    const Value dflt = p.get(0) ? *p.get(0) : Value::real(0.0);
    if (v.is_number()) return Value::real(v.as_double());
    double d;
    if (v.is_string() && parse_float(*v.s, &d)) return Value::real(d);
    return dflt;
  }
  if (name == "abs") {
    Params p("abs", args, {});
    if (v.is_int()) {
      FLASHRT_CHECK(v.i != INT64_MIN, "integer overflow (past 64 bits)");
      return Value::integer(std::abs(v.i));
    }
    if (v.kind == Kind::Float) return Value::real(std::fabs(v.f));
    fail("bad operand type for abs(): '{}'", type_name(v));
  }
  if (name == "round") {
    Params p("round", args, {"precision", "method"});
    const int64_t prec = p.integer(0, 0);
    const std::string method = p.string(1, "common");
    FLASHRT_CHECK(method == "common" || method == "ceil" || method == "floor",
                  "method must be common, ceil or floor");
    FLASHRT_CHECK(v.is_number(), "type {} doesn't define __round__ method", type_name(v));
    if (method == "common") {
      if (v.is_int() && prec >= 0) return Value::integer(v.i);
      return Value::real(round_float(v.as_double(), prec));
    }
    FLASHRT_CHECK(prec >= -308 && prec <= 308, "round precision out of range");
    const double scale = std::pow(10.0, static_cast<double>(prec));
    const double x = v.as_double() * scale;
    return Value::real((method == "ceil" ? std::ceil(x) : std::floor(x)) / scale);
  }
  if (name == "items") {
    Params p("items", args, {});
    if (v.is_undefined()) return Value::make_list({});
    FLASHRT_CHECK(v.is_dict(), "Can only get item pairs from a mapping.");
    List l;
    for (const auto& [k, e] : *v.dict) l.push_back(Value::make_list({k, e}, true));
    return Value::make_list(std::move(l));
  }
  if (name == "dictsort") {
    Params p("dictsort", args, {"case_sensitive", "by", "reverse"});
    FLASHRT_CHECK(v.is_dict(), "dictsort needs a mapping, not '{}'", type_name(v));
    const bool cs = p.boolean(0, false);
    const std::string by = p.string(1, "key");
    FLASHRT_CHECK(by == "key" || by == "value", "You can only sort by either \"key\" or \"value\"");
    const bool rev = p.boolean(2, false);
    List l;
    for (const auto& [k, e] : *v.dict) l.push_back(Value::make_list({k, e}, true));
    tick(l.size());
    const size_t pos = by == "key" ? 0 : 1;
    std::stable_sort(l.begin(), l.end(), [&](const Value& a, const Value& b) {
      Value x = (*a.list)[pos], y = (*b.list)[pos];
      if (!cs) {
        x = ignore_case(x);
        y = ignore_case(y);
      }
      return rev ? compare(y, x) < 0 : compare(x, y) < 0;
    });
    return Value::make_list(std::move(l));
  }
  if (name == "indent") {
    if (v.is_undefined()) throw Error(*v.s);
    FLASHRT_CHECK(v.is_string(), "the indent filter needs a string, not '{}'", type_name(v));
  }
  if (name == "indent") {
    Params p("indent", args, {"width", "first", "blank"});
    std::string ind = "    ";
    if (p.get(0)) {
      if (p.get(0)->is_string()) {
        ind = *p.get(0)->s;
      } else {
        const int64_t w = p.integer(0, 4);
        FLASHRT_CHECK(w <= 4096, "indent width too large");
        ind = std::string(static_cast<size_t>(std::max<int64_t>(0, w)), ' ');
      }
    }
    return make_string(indent(*v.s, ind, p.boolean(1, false), p.boolean(2, false), *this));
  }
  if (name == "selectattr" || name == "rejectattr" || name == "select" || name == "reject") {
    const bool by_attr = name == "selectattr" || name == "rejectattr";
    const bool keep = name == "selectattr" || name == "select";
    const size_t off = by_attr ? 1 : 0;
    FLASHRT_CHECK(!by_attr || !args.pos.empty(), "Missing parameter for attribute name");
    CallArgs targs;
    targs.pos.assign(args.pos.begin() + static_cast<ptrdiff_t>(std::min(args.pos.size(), off + 1)),
                     args.pos.end());
    targs.kw = args.kw;
    const bool has_test = args.pos.size() > off;
    List out;
    const auto seq = iterate(v);
    for (const Value& item : *seq) {
      tick();
      const Value x = by_attr ? attr_path(*this, item, args.pos[0]) : item;
      CallArgs a = targs;
      const bool r = has_test ? test(to_str(args.pos[off]), x, a) : truthy(x);
      if (r == keep) out.push_back(item);
    }
    return Value::make_list(std::move(out));
  }
  if (name == "map") {
    List out;
    const auto items = truthy(v) ? iterate(v) : std::make_shared<const List>();
    if (args.pos.empty() && args.kwarg("attribute")) {
      const Value attribute = *args.kwarg("attribute");
      const Value* dflt = args.kwarg("default");
      for (const auto& [k, e] : args.kw)
        FLASHRT_CHECK(k == "attribute" || k == "default", "Unexpected keyword argument '{}'", k);
      for (const Value& item : *items) {
        tick();
        Value x = attr_path(*this, item, attribute);
        out.push_back(x.is_undefined() && dflt ? *dflt : x);
      }
    } else {
      FLASHRT_CHECK(!args.pos.empty(), "map requires a filter argument");
      const std::string f = to_str(args.pos[0]);
      CallArgs fargs;
      fargs.pos.assign(args.pos.begin() + 1, args.pos.end());
      fargs.kw = args.kw;
      for (const Value& item : *items) {
        tick();
        CallArgs a = fargs;
        out.push_back(filter(f, item, a));
      }
    }
    return Value::make_list(std::move(out));
  }
  if (name == "unique") {
    Params p("unique", args, {"case_sensitive", "attribute"});
    const bool cs = p.boolean(0, false);
    List out, seen;
    const auto seq = iterate(v);
    for (const Value& item : *seq) {
      tick(1 + seen.size() / 64);
      Value key = p.has(1) ? attr_path(*this, item, *p.get(1)) : item;
      if (!cs) key = ignore_case(key);
      bool dup = false;
      for (const Value& s : seen)
        if (equals(s, key)) {
          dup = true;
          break;
        }
      if (dup) continue;
      seen.push_back(key);
      out.push_back(item);
    }
    return Value::make_list(std::move(out));
  }
  if (name == "sort") {
    Params p("sort", args, {"reverse", "case_sensitive", "attribute"});
    const bool rev = p.boolean(0, false), cs = p.boolean(1, false);
    List items = *iterate(v);
    tick(items.size());
    // attribute= may list several comma-separated attributes (jinja2's make_multi_attrgetter).
    std::vector<Value> attrs;
    if (p.has(2)) {
      if (p.get(2)->is_string()) {
        const std::string all = *p.get(2)->s;
        size_t b = 0;
        while (true) {
          const size_t e = all.find(',', b);
          attrs.push_back(Value::string(all.substr(b, e == std::string::npos ? e : e - b)));
          if (e == std::string::npos) break;
          b = e + 1;
        }
      } else {
        attrs.push_back(*p.get(2));
      }
    }
    std::vector<std::pair<Value, size_t>> keyed;
    for (size_t k = 0; k < items.size(); ++k) {
      Value key;
      if (attrs.empty()) {
        key = items[k];
      } else if (attrs.size() == 1) {
        key = attr_path(*this, items[k], attrs[0]);
      } else {
        List parts;
        for (const Value& a : attrs) parts.push_back(attr_path(*this, items[k], a));
        key = Value::make_list(std::move(parts));
      }
      if (!cs) {
        if (key.is_list() && attrs.size() > 1) {
          List parts;
          for (const Value& e : *key.list) parts.push_back(ignore_case(e));
          key = Value::make_list(std::move(parts));
        } else {
          key = ignore_case(key);
        }
      }
      keyed.emplace_back(std::move(key), k);
    }
    std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& a, const auto& b) {
      return rev ? compare(b.first, a.first) < 0 : compare(a.first, b.first) < 0;
    });
    List out;
    for (const auto& [key, k] : keyed) out.push_back(items[k]);
    return Value::make_list(std::move(out));
  }
  if (name == "reverse") {
    Params p("reverse", args, {});
    if (v.is_string()) {
      std::u32string u = text::decode(*v.s);
      std::reverse(u.begin(), u.end());
      return make_string(text::encode(u));
    }
    List l = *iterate(v);
    std::reverse(l.begin(), l.end());
    return Value::make_list(std::move(l));
  }
  if (name == "sum") {
    Params p("sum", args, {"attribute", "start"});
    Value acc = p.get(1) ? *p.get(1) : Value::integer(0);
    const auto seq = iterate(v);
    for (const Value& item : *seq) {
      tick();
      acc = eval_binary("+", acc, p.has(0) ? attr_path(*this, item, *p.get(0)) : item);
    }
    return acc;
  }
  if (name == "min" || name == "max") {
    Params p(name.c_str(), args, {"case_sensitive", "attribute"});
    const bool cs = p.boolean(0, false);
    const auto items = iterate(v);
    if (items->empty()) return Value::undefined("No aggregated item, sequence was empty.");
    const Value* best = nullptr;
    Value best_key;
    for (const Value& item : *items) {
      tick();
      Value key = p.has(1) ? attr_path(*this, item, *p.get(1)) : item;
      if (!cs) key = ignore_case(key);
      if (!best || (name == "min" ? compare(key, best_key) < 0 : compare(key, best_key) > 0)) {
        best = &item;
        best_key = key;
      }
    }
    return *best;
  }
  if (name == "wordcount") {
    Params p("wordcount", args, {});
    int64_t n = 0;
    bool in_word = false;
    for (char32_t c : text::decode(to_str(v))) {
      const bool w = text::is_word(c);
      if (w && !in_word) ++n;
      in_word = w;
    }
    return Value::integer(n);
  }
  if (name == "center") {
    Params p("center", args, {"width"});
    return make_string(center(to_str(v), p.integer(0, 80), *this));
  }
  if (name == "truncate") {
    Params p("truncate", args, {"length", "killwords", "end", "leeway"});
    const int64_t len = p.integer(0, 255), leeway = p.integer(3, 5);
    const std::string end = p.string(2, "...");
    if (!v.is_string() && length(v).i <= len + leeway) return v;  // len() of what it is
    const std::u32string s = text::decode(to_str(v));
    const auto end_len = static_cast<int64_t>(text::length(end));
    FLASHRT_CHECK(len >= end_len, "expected length >= {}, got {}", end_len, len);
    FLASHRT_CHECK(leeway >= 0, "expected leeway >= 0, got {}", leeway);
    if (static_cast<int64_t>(s.size()) <= len + leeway) return make_string(text::encode(s));
    std::u32string head = s.substr(0, static_cast<size_t>(len - end_len));
    if (!p.boolean(1, false)) {
      const size_t sp = head.rfind(U' ');
      if (sp != std::u32string::npos) head = head.substr(0, sp);
    }
    return make_string(text::encode(head) + end);
  }
  if (name == "attr") {
    Params p("attr", args, {"name"});
    FLASHRT_CHECK(p.get(0), "attr() needs a name");
    return getattr(v, to_str(*p.get(0)));
  }
  if (name == "batch") {
    Params p("batch", args, {"linecount", "fill_with"});
    const int64_t n = p.integer(0, 0);
    FLASHRT_CHECK(n > 0, "batch size must be positive");
    List out, cur;
    const auto seq = iterate(v);
    for (const Value& item : *seq) {
      tick();
      cur.push_back(item);
      if (static_cast<int64_t>(cur.size()) == n) {
        out.push_back(Value::make_list(std::move(cur)));
        cur.clear();
      }
    }
    if (!cur.empty()) {
      if (p.get(1))
        while (static_cast<int64_t>(cur.size()) < n) cur.push_back(*p.get(1));
      out.push_back(Value::make_list(std::move(cur)));
    }
    return Value::make_list(std::move(out));
  }
  fail("no filter named '{}'", name);
}

bool Interp::test(const std::string& name, const Value& v, CallArgs& args) {
  auto arg = [&](const char* what) -> const Value& {
    FLASHRT_CHECK(!args.pos.empty() || !args.kw.empty(), "test '{}' needs {}", name, what);
    return args.pos.empty() ? args.kw[0].second : args.pos[0];
  };
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "string") return v.is_string();
  if (name == "number") return v.is_number();
  if (name == "integer") return v.kind == Kind::Int;
  if (name == "float") return v.kind == Kind::Float;
  if (name == "boolean") return v.kind == Kind::Bool;
  if (name == "true") return v.kind == Kind::Bool && v.i;
  if (name == "false") return v.kind == Kind::Bool && !v.i;
  if (name == "mapping") return v.is_dict();
  if (name == "iterable" || name == "sequence")
    return v.is_string() || v.is_list() || v.is_dict() || v.is_undefined();
  if (name == "callable") return v.as<Callable>() != nullptr;
  if (name == "escaped") return false;
  if (name == "odd" || name == "even" || name == "divisibleby") {
    const Value m = name == "divisibleby" ? arg("a divisor") : Value::integer(2);
    const Value r = eval_binary("%", v, m);
    if (name == "odd") return equals(r, Value::integer(1));
    return equals(r, Value::integer(0));
  }
  if (name == "eq" || name == "equalto" || name == "==") return equals(v, arg("a value"));
  if (name == "ne" || name == "!=") return !equals(v, arg("a value"));
  if (name == "lt" || name == "lessthan" || name == "<") return compare(v, arg("a value")) < 0;
  if (name == "le" || name == "<=") return compare(v, arg("a value")) <= 0;
  if (name == "gt" || name == "greaterthan" || name == ">") return compare(v, arg("a value")) > 0;
  if (name == "ge" || name == ">=") return compare(v, arg("a value")) >= 0;
  if (name == "in") return contains(arg("a container"), v);
  if (name == "lower" || name == "upper") {
    // str.islower(): some cased character, and none of the other case.
    bool cased = false;
    for (char32_t c : text::decode(to_str(v))) {
      if (name == "lower" ? text::is_upper(c) : text::is_lower(c)) return false;
      if (name == "lower" ? text::is_lower(c) : text::is_upper(c)) cased = true;
    }
    return cased;
  }
  if (name == "sameas") {
    const Value& o = arg("a value");
    if (v.kind != o.kind) return false;
    switch (v.kind) {
      case Kind::None:
      case Kind::Undefined:
        return true;
      case Kind::Bool:
      case Kind::Int:
        return v.i == o.i;
      case Kind::String:
        return v.s == o.s;
      case Kind::List:
        return v.list == o.list;
      case Kind::Dict:
        return v.dict == o.dict;
      case Kind::Object:
        return v.obj == o.obj;
      default:
        return false;
    }
  }
  if (name == "filter") return has_filter(to_str(v));
  if (name == "test") return has_test(to_str(v));
  fail("no test named '{}'", name);
}

}  // namespace flashrt::jinja

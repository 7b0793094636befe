// Methods of str, list and dict values (Python's, as the sandbox lets a template call them) and
// the template globals: range, namespace, dict, and transformers' raise_exception and
// strftime_now. The immutable sandbox refuses the methods that change a list or dict.
#include <algorithm>
#include <ctime>

#include "tokenizer/jinja_interp.h"
#include "tokenizer/jinja_text.h"

namespace flashrt::jinja {

namespace {

const char* const kStrMethods[] = {
    "strip",     "lstrip",     "rstrip",       "split",       "rsplit",  "splitlines", "startswith",
    "endswith",  "replace",    "upper",        "lower",       "title",   "capitalize", "swapcase",
    "casefold",  "find",       "rfind",        "index",       "rindex",  "count",      "format",
    "join",      "isdigit",    "isalpha",      "isalnum",     "isspace", "islower",    "isupper",
    "isnumeric", "isdecimal",  "istitle",      "center",      "ljust",   "rjust",      "zfill",
    "partition", "rpartition", "removeprefix", "removesuffix"};
const char* const kDictMethods[] = {"items", "keys", "values", "get", "copy"};
const char* const kDictMutators[] = {"clear", "pop", "popitem", "setdefault", "update"};
const char* const kListMethods[] = {"index", "count", "copy"};
const char* const kListMutators[] = {"append", "clear",  "extend",  "insert",
                                     "pop",    "remove", "reverse", "sort"};

template <size_t N>
bool in_list(const char* const (&names)[N], const std::string& name) {
  return std::find_if(std::begin(names), std::end(names),
                      [&](const char* n) { return name == n; }) != std::end(names);
}

// Where `sub` is in `s` as a code-point index (Python's find), or -1.
int64_t find_index(const std::string& s, const std::string& sub, bool reverse) {
  const size_t b = reverse ? s.rfind(sub) : s.find(sub);
  if (b == std::string::npos) return -1;
  return static_cast<int64_t>(text::length(std::string_view(s).substr(0, b)));
}

bool all_chars(const std::string& s, bool (*pred)(char32_t)) {
  if (s.empty()) return false;
  for (char32_t c : text::decode(s))
    if (!pred(c)) return false;
  return true;
}

std::vector<std::string> prefixes(const Value& v, const char* fn) {
  std::vector<std::string> out;
  if (v.is_string()) {
    out.push_back(*v.s);
  } else if (v.is_list() && v.tuple) {
    for (const Value& e : *v.list) {
      FLASHRT_CHECK(e.is_string(), "tuple for {} must only contain str, not {}", fn, type_name(e));
      out.push_back(*e.s);
    }
  } else {
    fail("{} first arg must be str or a tuple of str, not {}", fn, type_name(v));
  }
  return out;
}

Value string_list(Interp& in, const std::vector<std::string>& parts) {
  List l;
  l.reserve(parts.size());
  in.tick(parts.size() / 16);
  for (const std::string& p : parts) l.push_back(Value::string(p));
  return Value::make_list(std::move(l));
}

std::string pad(Interp& in, const std::string& s, int64_t width, const std::string& fill, int how) {
  const auto len = static_cast<int64_t>(text::length(s));
  FLASHRT_CHECK(text::length(fill) == 1, "The fill character must be exactly one character long");
  if (width <= len) return s;
  in.check_size(static_cast<size_t>(width - len) * fill.size() + s.size());
  const int64_t total = width - len;
  int64_t left = how < 0 ? 0 : how > 0 ? total : total / 2 + (total & width & 1);
  std::string out;
  for (int64_t k = 0; k < left; ++k) out += fill;
  out += s;
  for (int64_t k = 0; k < total - left; ++k) out += fill;
  return out;
}

// str.format with {} / {0} / {name} fields (no conversions or format specs).
std::string format(Interp& in, const std::string& f, const CallArgs& args) {
  std::string out;
  size_t auto_index = 0;
  for (size_t k = 0; k < f.size(); ++k) {
    const char c = f[k];
    if (c == '}') {
      FLASHRT_CHECK(k + 1 < f.size() && f[k + 1] == '}',
                    "Single '}}' encountered in format string");
      out.push_back('}');
      ++k;
      continue;
    }
    if (c != '{') {
      out.push_back(c);
      continue;
    }
    if (k + 1 < f.size() && f[k + 1] == '{') {
      out.push_back('{');
      ++k;
      continue;
    }
    const size_t e = f.find('}', k);
    FLASHRT_CHECK(e != std::string::npos, "Single '{{' encountered in format string");
    const std::string field = f.substr(k + 1, e - k - 1);
    FLASHRT_CHECK(field.find_first_of(":!.[") == std::string::npos,
                  "format fields with conversions or specs are not supported: '{{{}}}'", field);
    const Value* v = nullptr;
    if (field.empty()) {
      FLASHRT_CHECK(auto_index < args.pos.size(), "Replacement index {} out of range", auto_index);
      v = &args.pos[auto_index++];
    } else if (std::all_of(field.begin(), field.end(),
                           [](char d) { return d >= '0' && d <= '9'; })) {
      const size_t idx = field.size() < 9 ? std::stoul(field) : SIZE_MAX;
      FLASHRT_CHECK(idx < args.pos.size(), "Replacement index {} out of range", field);
      v = &args.pos[idx];
    } else {
      v = args.kwarg(field);
      FLASHRT_CHECK(v, "'{}'", field);
    }
    append_str(&out, *v);
    in.check_size(out.size());
    k = e;
  }
  return out;
}

struct MethodFn : Callable {
  MethodFn(Value s, std::string n) : Callable(std::move(n)), self(std::move(s)) {}
  Value call(Interp& in, CallArgs& args) const override {
    if (self.is_string()) return str_method(in, args);
    if (self.is_dict()) return dict_method(in, args);
    return list_method(in, args);
  }

  Value str_method(Interp& in, CallArgs& args) const {
    const std::string& s = *self.s;
    const char* fn = name.c_str();
    if (name == "strip" || name == "lstrip" || name == "rstrip") {
      Params p(fn, args, {"chars"});
      const std::string chars = p.has(0) ? to_str(*p.get(0)) : "";
      return in.make_string(
          text::strip(s, p.has(0) ? &chars : nullptr, name != "rstrip", name != "lstrip"));
    }
    if (name == "split" || name == "rsplit") {
      Params p(fn, args, {"sep", "maxsplit"});
      const std::string sep = p.has(0) ? to_str(*p.get(0)) : "";
      const int64_t maxsplit = p.integer(1, -1);
      FLASHRT_CHECK(!p.has(0) || !sep.empty(), "empty separator");
      return string_list(in, name == "split"
                                 ? text::split(s, p.has(0) ? &sep : nullptr, maxsplit)
                                 : text::rsplit(s, p.has(0) ? &sep : nullptr, maxsplit));
    }
    if (name == "splitlines") {
      Params p(fn, args, {"keepends"});
      return string_list(in, text::splitlines(s, p.boolean(0, false)));
    }
    if (name == "startswith" || name == "endswith") {
      Params p(fn, args, {"prefix", "start", "end"});
      FLASHRT_CHECK(p.get(0), "{}() takes at least 1 argument (0 given)", fn);
      std::u32string u = text::decode(s);
      const auto n = static_cast<int64_t>(u.size());
      auto clamp = [&](int64_t x) { return x < 0 ? std::max<int64_t>(0, x + n) : std::min(x, n); };
      const int64_t b = p.has(1) ? clamp(p.integer(1, 0)) : 0;
      const int64_t e = p.has(2) ? clamp(p.integer(2, n)) : n;
      if (b > e) return Value::boolean(false);
      const std::string part = text::encode(
          std::u32string_view(u).substr(static_cast<size_t>(b), static_cast<size_t>(e - b)));
      for (const std::string& x : prefixes(*p.get(0), fn)) {
        const bool hit =
            name == "startswith"
                ? part.compare(0, x.size(), x) == 0
                : part.size() >= x.size() && part.compare(part.size() - x.size(), x.size(), x) == 0;
        if (hit) return Value::boolean(true);
      }
      return Value::boolean(false);
    }
    if (name == "replace") {
      Params p(fn, args, {"old", "new", "count"});
      FLASHRT_CHECK(p.get(0) && p.get(1), "replace() needs the old and the new string");
      FLASHRT_CHECK(p.get(0)->is_string() && p.get(1)->is_string(),
                    "replace() arguments must be str");
      return in.make_string(
          text::replace(s, *p.get(0)->s, *p.get(1)->s, p.integer(2, -1), kMaxOutput));
    }
    if (name == "upper" || name == "lower" || name == "casefold" || name == "title" ||
        name == "capitalize" || name == "swapcase") {
      Params p(fn, args, {});
      if (name == "upper") return in.make_string(text::upper(s));
      if (name == "lower" || name == "casefold") return in.make_string(text::lower(s));
      if (name == "title") return in.make_string(text::py_title(s));
      if (name == "swapcase") return in.make_string(text::swapcase(s));
      return in.make_string(text::capitalize(s));
    }
    if (name == "find" || name == "rfind" || name == "index" || name == "rindex" ||
        name == "count") {
      Params p(fn, args, {"sub"});
      FLASHRT_CHECK(p.get(0) && p.get(0)->is_string(), "{}() needs a str argument", fn);
      const std::string& sub = *p.get(0)->s;
      if (name == "count") return Value::integer(static_cast<int64_t>(text::count(s, sub)));
      const int64_t k = find_index(s, sub, name[0] == 'r');
      FLASHRT_CHECK(k >= 0 || name.find("index") == std::string::npos, "substring not found");
      return Value::integer(k);
    }
    if (name == "format") return in.make_string(format(in, s, args));
    if (name == "join") {
      Params p(fn, args, {"iterable"});
      FLASHRT_CHECK(p.get(0), "join() takes exactly one argument (0 given)");
      std::string out;
      size_t k = 0;
      const auto seq = in.iterate(*p.get(0));
      for (const Value& e : *seq) {
        in.tick();
        FLASHRT_CHECK(e.is_string(), "sequence item {}: expected str instance, {} found", k,
                      type_name(e));
        if (k++) out += s;
        out += *e.s;
        in.check_size(out.size());
      }
      return in.make_string(std::move(out));
    }
    if (name.rfind("is", 0) == 0) {
      Params p(fn, args, {});
      if (name == "isdigit" || name == "isdecimal")
        return Value::boolean(all_chars(s, text::is_digit));
      if (name == "isnumeric") return Value::boolean(all_chars(s, text::is_numeric));
      if (name == "isalpha") return Value::boolean(all_chars(s, text::is_alpha));
      if (name == "isspace") return Value::boolean(all_chars(s, text::is_space));
      if (name == "isalnum")
        return Value::boolean(
            all_chars(s, [](char32_t c) { return text::is_alpha(c) || text::is_numeric(c); }));
      if (name == "istitle")
        return Value::boolean(!s.empty() && text::py_title(s) == s && text::lower(s) != s);
      bool cased = false;
      for (char32_t c : text::decode(s)) {
        if (name == "islower" ? text::is_upper(c) : text::is_lower(c)) return Value::boolean(false);
        if (name == "islower" ? text::is_lower(c) : text::is_upper(c)) cased = true;
      }
      return Value::boolean(cased);
    }
    if (name == "center" || name == "ljust" || name == "rjust") {
      Params p(fn, args, {"width", "fillchar"});
      const int64_t w = p.integer(0, 0);
      const int how = name == "ljust" ? -1 : name == "rjust" ? 1 : 0;
      return in.make_string(pad(in, s, w, p.string(1, " "), how));
    }
    if (name == "zfill") {
      Params p(fn, args, {"width"});
      const int64_t w = p.integer(0, 0);
      const auto len = static_cast<int64_t>(text::length(s));
      if (w <= len) return self;
      in.check_size(static_cast<size_t>(w));
      const bool sign = !s.empty() && (s[0] == '+' || s[0] == '-');
      const std::string zeros(static_cast<size_t>(w - len), '0');
      return in.make_string(sign ? s.substr(0, 1) + zeros + s.substr(1) : zeros + s);
    }
    if (name == "partition" || name == "rpartition") {
      Params p(fn, args, {"sep"});
      FLASHRT_CHECK(p.get(0) && p.get(0)->is_string() && !p.get(0)->s->empty(),
                    "{}() needs a non-empty str separator", fn);
      const std::string& sep = *p.get(0)->s;
      const size_t k = name == "partition" ? s.find(sep) : s.rfind(sep);
      List l;
      if (k == std::string::npos) {
        l = name == "partition" ? List{self, Value::string(""), Value::string("")}
                                : List{Value::string(""), Value::string(""), self};
      } else {
        l = {Value::string(s.substr(0, k)), Value::string(sep),
             Value::string(s.substr(k + sep.size()))};
      }
      return Value::make_list(std::move(l), true);
    }
    if (name == "removeprefix" || name == "removesuffix") {
      Params p(fn, args, {"affix"});
      FLASHRT_CHECK(p.get(0) && p.get(0)->is_string(), "{}() needs a str argument", fn);
      const std::string& x = *p.get(0)->s;
      if (name == "removeprefix" && s.compare(0, x.size(), x) == 0)
        return Value::string(s.substr(x.size()));
      if (name == "removesuffix" && !x.empty() && s.size() >= x.size() &&
          s.compare(s.size() - x.size(), x.size(), x) == 0)
        return Value::string(s.substr(0, s.size() - x.size()));
      return self;
    }
    fail("'str' object has no attribute '{}'", name);
  }

  Value dict_method(Interp& in, CallArgs& args) const {
    const Dict& d = *self.dict;
    const char* fn = name.c_str();
    if (name == "get") {
      Params p(fn, args, {"key", "default"});
      FLASHRT_CHECK(p.get(0), "get expected at least 1 argument, got 0");
      if (const Value* v = dict_find(d, *p.get(0))) return *v;
      return p.get(1) ? *p.get(1) : Value::none();
    }
    Params p(fn, args, {});
    if (name == "copy") return self;
    in.tick(d.size() / 16);
    List l;
    l.reserve(d.size());
    for (const auto& [k, v] : d) {
      if (name == "items") {
        l.push_back(Value::make_list({k, v}, true));
      } else {
        l.push_back(name == "keys" ? k : v);
      }
    }
    return Value::make_list(std::move(l));
  }

  Value list_method(Interp& in, CallArgs& args) const {
    const List& l = *self.list;
    const char* fn = name.c_str();
    if (name == "copy") {
      Params p(fn, args, {});
      return self;
    }
    Params p(fn, args, {"value"});
    FLASHRT_CHECK(p.get(0), "{}() takes exactly one argument (0 given)", fn);
    in.tick(l.size() / 16);
    int64_t n = 0;
    for (size_t k = 0; k < l.size(); ++k) {
      if (!equals(l[k], *p.get(0))) continue;
      if (name == "index") return Value::integer(static_cast<int64_t>(k));
      ++n;
    }
    FLASHRT_CHECK(name == "count", "{} is not in list", repr(*p.get(0)));
    return Value::integer(n);
  }

  Value self;
};

struct GlobalFn : Callable {
  explicit GlobalFn(std::string n) : Callable(std::move(n)) {}
  Value call(Interp& in, CallArgs& args) const override {
    if (name == "raise_exception") {
      FLASHRT_CHECK(!args.pos.empty(), "raise_exception() takes a message");
      fail("{}", to_str(args.pos[0]));
    }
    if (name == "strftime_now") {
      Params p("strftime_now", args, {"format"});
      FLASHRT_CHECK(p.get(0), "strftime_now() takes a format");
      const std::string f = to_str(*p.get(0));
      if (in.options.strftime_now) return in.make_string(in.options.strftime_now(f.c_str()));
      const std::time_t now = std::time(nullptr);
      std::tm tm{};
      localtime_r(&now, &tm);
      if (f.empty()) return Value::string("");
      // strftime gives 0 both for an empty result and a short buffer: grow a few times.
      for (size_t cap = 256; cap <= (size_t{1} << 20); cap *= 16) {
        std::string buf(cap, '\0');
        const size_t n = std::strftime(buf.data(), buf.size(), f.c_str(), &tm);
        if (n > 0) return in.make_string(buf.substr(0, n));
      }
      return Value::string("");
    }
    if (name == "range") {
      FLASHRT_CHECK(args.kw.empty(), "range() takes no keyword arguments");
      FLASHRT_CHECK(!args.pos.empty() && args.pos.size() <= 3,
                    "range expected at least 1 argument, got {}", args.pos.size());
      int64_t start = 0, stop, step = 1;
      if (args.pos.size() == 1) {
        stop = to_int(args.pos[0], "range() argument");
      } else {
        start = to_int(args.pos[0], "range() argument");
        stop = to_int(args.pos[1], "range() argument");
        if (args.pos.size() == 3) step = to_int(args.pos[2], "range() argument");
      }
      FLASHRT_CHECK(step != 0, "range() arg 3 must not be zero");
      // Counted in 128 bits: the ends may be anywhere in int64.
      const __int128 span =
          step > 0 ? static_cast<__int128>(stop) - start : static_cast<__int128>(start) - stop;
      const __int128 a = step > 0 ? step : -static_cast<__int128>(step);
      const __int128 len = span <= 0 ? 0 : (span + a - 1) / a;
      FLASHRT_CHECK(len <= kMaxRange,
                    "Range too big. The sandbox blocks ranges larger than MAX_RANGE ({}).",
                    kMaxRange);
      List l;
      l.reserve(static_cast<size_t>(len));
      for (int64_t k = 0; k < static_cast<int64_t>(len); ++k)
        l.push_back(Value::integer(start + k * step));
      return Value::make_list(std::move(l));
    }
    // namespace(...) and dict(...): a mapping and/or keyword arguments.
    FLASHRT_CHECK(args.pos.size() <= 1, "{} expected at most 1 argument, got {}", name,
                  args.pos.size());
    std::vector<std::pair<Value, Value>> items;
    if (!args.pos.empty()) {
      const Value& src = args.pos[0];
      if (src.is_dict()) {
        items = *src.dict;
      } else {
        const auto seq = in.iterate(src);
        for (const Value& e : *seq) {
          const auto kv = in.iterate(e);
          FLASHRT_CHECK(kv->size() == 2,
                        "dictionary update sequence element has length {}; 2 is required",
                        kv->size());
          items.emplace_back((*kv)[0], (*kv)[1]);
        }
      }
    }
    for (const auto& [k, v] : args.kw) items.emplace_back(Value::string(k), v);
    if (name == "namespace") {
      std::shared_ptr<Namespace> ns;
      Namespace* n = in.new_namespace(&ns);
      for (auto& [k, v] : items) {
        FLASHRT_CHECK(k.is_string(), "namespace keys must be strings");
        n->set(*k.s, v);
      }
      return Value::object(ns);
    }
    Dict d;
    for (auto& [k, v] : items) {
      bool found = false;
      for (auto& [dk, dv] : d)
        if (equals(dk, k)) {
          dv = v;
          found = true;
        }
      if (!found) d.emplace_back(k, v);
    }
    return Value::make_dict(std::move(d));
  }
};

}  // namespace

std::optional<Value> Interp::method(const Value& self, const std::string& name) {
  const bool ok = (self.is_string() && in_list(kStrMethods, name)) ||
                  (self.is_dict() && in_list(kDictMethods, name)) ||
                  (self.is_list() && in_list(kListMethods, name));
  if (ok) return Value::object(std::make_shared<MethodFn>(self, name));
  if ((self.is_dict() && in_list(kDictMutators, name)) ||
      (self.is_list() && !self.tuple && in_list(kListMutators, name)))
    return Value::unsafe_attr("access to attribute '" + name + "' of '" + type_name(self) +
                              "' object is unsafe.");
  return std::nullopt;
}

Value Interp::global(const std::string& name) {
  if (name == "range" || name == "namespace" || name == "dict" || name == "raise_exception" ||
      name == "strftime_now")
    return Value::object(std::make_shared<GlobalFn>(name));
  return Value();
}

}  // namespace flashrt::jinja

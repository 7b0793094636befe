#include "engine/json_schema.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <set>
#include <vector>

#include "core/error.h"
#include "engine/grammar.h"

namespace flashrt {
std::string gbnf_literal(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\x{:02X}", static_cast<unsigned>(c));
    } else {
      out += c;
    }
  }
  return out + "\"";
}

namespace {

using json = nlohmann::ordered_json;

constexpr int kMaxDepth = 64;
constexpr size_t kMaxKeyLength = 256;  // the key-exclusion rules recurse per character
constexpr uint64_t kMaxCount = 10000;  // the grammar parser's repetition limit

// The JSON building blocks every grammar gets (unused ones cost nothing).
constexpr const char* kPrimitives = R"(ws ::= ( " " | "\n" [ \t]{0,20} )?
value ::= object | array | string | number | boolean | null
object ::= "{" ws ( kv ( "," ws kv )* )? "}"
kv ::= string ws ":" ws value ws
array ::= "[" ws ( value ws ( "," ws value ws )* )? "]"
string ::= "\"" char* "\""
char ::= [^"\\\x00-\x1F] | "\\" ( ["\\/bfnrt] | "u" hex4 )
hex ::= [0-9a-fA-F]
hex4 ::= [0-9a-cA-CeEfF] hex hex hex | [dD] [0-7] hex hex
digits ::= "0" | [1-9] [0-9]{0,18}
fraction ::= "." [0-9]{1,18}
exponent ::= [eE] [-+]? [0-9]{1,2}
number ::= "-"? digits fraction? exponent?
integer ::= "-"? digits
boolean ::= "true" | "false"
null ::= "null"
date ::= [0-9]{4} "-" ( "0" [1-9] | "1" [0-2] ) "-" ( "0" [1-9] | [12] [0-9] | "3" [01] )
time ::= ( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ":" [0-5] [0-9] ( "." [0-9]{1,6} )? ( "Z" | [+-] ( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] )
)";
// (hex4 leaves out surrogates: an escaped half of a pair on its own is not valid JSON text.)

const std::set<std::string> kAnnotations = {
    "title",       "description",     "default",          "examples",   "$schema", "$id",
    "$comment",    "deprecated",      "readOnly",         "writeOnly",  "$anchor", "$defs",
    "definitions", "contentEncoding", "contentMediaType", "$vocabulary"};
const std::set<std::string> kRefused = {"not",
                                        "if",
                                        "then",
                                        "else",
                                        "pattern",
                                        "patternProperties",
                                        "propertyNames",
                                        "dependencies",
                                        "dependentRequired",
                                        "dependentSchemas",
                                        "contains",
                                        "minContains",
                                        "maxContains",
                                        "multipleOf",
                                        "unevaluatedProperties",
                                        "unevaluatedItems",
                                        "$dynamicRef",
                                        "$recursiveRef",
                                        "$dynamicAnchor"};
const std::set<std::string> kHandled = {"$ref",
                                        "const",
                                        "enum",
                                        "anyOf",
                                        "oneOf",
                                        "allOf",
                                        "type",
                                        "properties",
                                        "required",
                                        "additionalProperties",
                                        "items",
                                        "prefixItems",
                                        "additionalItems",
                                        "minItems",
                                        "maxItems",
                                        "minLength",
                                        "maxLength",
                                        "format",
                                        "minimum",
                                        "maximum",
                                        "exclusiveMinimum",
                                        "exclusiveMaximum",
                                        "uniqueItems",
                                        "minProperties",
                                        "maxProperties"};

std::string pointer_escape(const std::string& key) {
  std::string out;
  for (const char c : key) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

std::string repeat(const std::string& item, uint64_t lo, uint64_t hi) {
  if (hi == 0) return "";
  if (hi == UINT64_MAX)
    return lo == 0 ? "( " + item + " )*" : fmt::format("( {} ){{{},}}", item, lo);
  return fmt::format("( {} ){{{},{}}}", item, lo, hi);
}

std::string join(const std::vector<std::string>& parts, const char* sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? sep : "") + parts[i];
  return out;
}

// GBNF for the decimal numbers in [a, b] of one length (no sign; a, b as digit strings).
std::string same_length_range(const std::string& a, const std::string& b) {
  if (a.empty()) return "";
  if (a == b) return gbnf_literal(a);
  const std::string rest_a = a.substr(1), rest_b = b.substr(1);
  if (a[0] == b[0]) return gbnf_literal(a.substr(0, 1)) + " " + same_length_range(rest_a, rest_b);
  const bool low_full = rest_a.find_first_not_of('0') == std::string::npos;
  const bool high_full = rest_b.find_first_not_of('9') == std::string::npos;
  std::vector<std::string> alts;
  const size_t n = rest_a.size();
  if (!low_full)
    alts.push_back(gbnf_literal(a.substr(0, 1)) + " " +
                   same_length_range(rest_a, std::string(n, '9')));
  const char lo = static_cast<char>(a[0] + (low_full ? 0 : 1));
  const char hi = static_cast<char>(b[0] - (high_full ? 0 : 1));
  if (lo <= hi)
    alts.push_back(fmt::format("[{}-{}]", lo, hi) + (n ? fmt::format(" [0-9]{{{}}}", n) : ""));
  if (!high_full)
    alts.push_back(gbnf_literal(b.substr(0, 1)) + " " +
                   same_length_range(std::string(n, '0'), rest_b));
  return "( " + join(alts, " | ") + " )";
}

// Non-negative integers in [lo, hi] without leading zeros; hi == UINT64_MAX: no upper bound.
std::string uint_range(uint64_t lo, uint64_t hi) {
  const std::string los = std::to_string(lo);
  const std::string his = hi == UINT64_MAX ? std::string(19, '9') : std::to_string(hi);
  std::vector<std::string> alts;
  for (size_t len = los.size(); len <= his.size(); ++len) {
    if (hi == UINT64_MAX && len > los.size()) {
      alts.push_back(fmt::format("[1-9] [0-9]{{{},18}}", len - 1));
      break;
    }
    const std::string a = len == los.size() ? los : "1" + std::string(len - 1, '0');
    const std::string b = len == his.size() ? his : std::string(len, '9');
    alts.push_back(same_length_range(a, b));
  }
  return "( " + join(alts, " | ") + " )";
}

class Converter {
 public:
  Converter(const json& root, const JsonSchemaOptions& o) : root_(root), opt_(o) {}

  std::string run() {
    const std::string body = visit(root_, "#", "root", 0);
    std::string out = "root ::= " + body + " ws\n";
    for (const auto& [name, rule] : rules_) out += name + " ::= " + rule + "\n";
    return out + kPrimitives;
  }

 private:
  template <class... Args>
  [[noreturn]] static void error(const std::string& path, fmt::format_string<Args...> f,
                                 Args&&... args) {
    fail("json schema: at {}: {}", path, fmt::format(f, std::forward<Args>(args)...));
  }

  // A rule for `body`, shared with an identical earlier one.
  std::string rule(const std::string& hint, const std::string& body) {
    if (auto it = by_body_.find(body); it != by_body_.end()) return it->second;
    const std::string name = fresh(hint);
    rules_.emplace_back(name, body);
    by_body_[body] = name;
    return name;
  }

  std::string fresh(const std::string& hint) {
    std::string base;
    for (const char c : hint) base += std::isalnum(static_cast<unsigned char>(c)) ? c : '-';
    base = "s-" + base.substr(0, 40);  // "s-": never one of the primitives' names
    std::string name = base;
    for (int i = 2; !used_.insert(name).second; ++i) name = base + "-" + std::to_string(i);
    return name;
  }

  // A count keyword. A maximum above the grammar's repetition limit is clamped to it (every
  // document stays valid); a minimum above it is refused.
  uint64_t count(const json& s, const char* key, const std::string& path, uint64_t dflt) {
    if (!s.contains(key)) return dflt;
    const json& v = s[key];
    const double d = v.is_number() ? v.get<double>() : -1;
    if (d < 0 || d != std::floor(d))
      error(path + "/" + key, "\"{}\" must be a non-negative integer", key);
    if (d > static_cast<double>(kMaxCount)) {
      if (dflt == UINT64_MAX) return kMaxCount;
      error(path + "/" + key, "\"{}\" above {} is not supported", key, kMaxCount);
    }
    return static_cast<uint64_t>(d);
  }

  void check_keywords(const json& s, const std::string& path) {
    for (const auto& [key, value] : s.items()) {
      if (kRefused.count(key)) error(path, "\"{}\" is not supported", key);
      if (!kHandled.count(key) && !kAnnotations.count(key) && opt_.strict)
        error(path, "unknown keyword \"{}\" (strict)", key);
    }
    if (s.contains("uniqueItems") && s["uniqueItems"] != false)
      error(path, "\"uniqueItems\" is not supported");
  }

  // True when `s` has keywords beyond annotations and `except`.
  static bool has_constraints(const json& s, std::initializer_list<const char*> except) {
    for (const auto& item : s.items()) {
      const std::string& key = item.key();
      if (kAnnotations.count(key)) continue;
      if (std::none_of(except.begin(), except.end(), [&](const char* e) { return key == e; }))
        return true;
    }
    return false;
  }

  std::string visit(const json& s, const std::string& path, const std::string& hint, int depth) {
    if (depth > kMaxDepth) error(path, "schema nested deeper than {}", kMaxDepth);
    if (s.is_boolean()) {
      if (!s.get<bool>()) error(path, "schema false matches nothing");
      return "value";
    }
    if (!s.is_object()) error(path, "a schema must be an object or a boolean");
    check_keywords(s, path);
    if (s.contains("$ref")) {
      if (has_constraints(s, {"$ref"}))
        error(path, "keywords next to \"$ref\" are not supported (put them in the target)");
      return ref(s["$ref"], path + "/$ref", depth);
    }
    if (s.contains("const")) return gbnf_literal(dump(s["const"], path));
    if (s.contains("enum")) {
      const json& e = s["enum"];
      if (!e.is_array() || e.empty()) error(path + "/enum", "\"enum\" must be a non-empty array");
      std::vector<std::string> alts;
      for (const auto& v : e) alts.push_back(gbnf_literal(dump(v, path)));
      return rule(hint, join(alts, " | "));
    }
    for (const char* key : {"anyOf", "oneOf"}) {
      if (!s.contains(key)) continue;
      const json& list = s[key];
      const std::string p = path + "/" + key;
      if (!list.is_array() || list.empty()) error(p, "\"{}\" must be a non-empty array", key);
      if (has_constraints(s, {key}))
        error(path, "keywords next to \"{}\" are not supported (put them in each branch)", key);
      std::vector<std::string> alts;
      for (size_t i = 0; i < list.size(); ++i)
        alts.push_back(
            visit(list[i], p + "/" + std::to_string(i), hint + "-" + std::to_string(i), depth + 1));
      return rule(hint, join(alts, " | "));
    }
    if (s.contains("allOf")) return visit(merge_all_of(s, path, depth), path, hint, depth + 1);

    std::vector<std::string> types;
    if (s.contains("type")) {
      const json& t = s["type"];
      if (t.is_string()) {
        types.push_back(t.get<std::string>());
      } else if (t.is_array() && !t.empty()) {
        for (const auto& x : t) {
          if (!x.is_string()) error(path + "/type", "\"type\" must be a string or a list of them");
          types.push_back(x.get<std::string>());
        }
      } else {
        error(path + "/type", "\"type\" must be a string or a non-empty list of strings");
      }
    } else if (s.contains("properties") || s.contains("additionalProperties") ||
               s.contains("required")) {
      types = {"object"};
    } else if (s.contains("items") || s.contains("prefixItems") || s.contains("minItems") ||
               s.contains("maxItems")) {
      types = {"array"};
    } else if (s.contains("minLength") || s.contains("maxLength") || s.contains("format")) {
      types = {"string"};
    } else if (s.contains("minimum") || s.contains("maximum") || s.contains("exclusiveMinimum") ||
               s.contains("exclusiveMaximum")) {
      types = {"number"};
    } else {
      return "value";
    }
    std::vector<std::string> alts;
    for (const auto& t : types) alts.push_back(typed(s, t, path, hint, depth));
    return alts.size() == 1 ? alts[0] : rule(hint, join(alts, " | "));
  }

  std::string dump(const json& v, const std::string& path) {
    try {
      return v.dump();
    } catch (const json::exception& e) {
      error(path, "bad value: {}", e.what());
    }
  }

  std::string typed(const json& s, const std::string& t, const std::string& path,
                    const std::string& hint, int depth) {
    if (t == "string") return string_rule(s, path, hint);
    if (t == "integer") return integer_rule(s, path, hint);
    if (t == "number") {
      for (const char* k : {"maximum", "exclusiveMinimum", "exclusiveMaximum"})
        if (s.contains(k)) error(path, "\"{}\" on a number is not supported", k);
      if (!s.contains("minimum")) return "number";
      if (!s["minimum"].is_number() || s["minimum"].get<double>() != 0)
        error(path + "/minimum", "\"minimum\" on a number is only supported as 0");
      return rule(hint, "digits fraction? exponent?");
    }
    if (t == "boolean") return "boolean";
    if (t == "null") return "null";
    if (t == "object") return object_rule(s, path, hint, depth);
    if (t == "array") return array_rule(s, path, hint, depth);
    error(path + "/type", "unknown type \"{}\"", t);
  }

  std::string string_rule(const json& s, const std::string& path, const std::string& hint) {
    const uint64_t lo = count(s, "minLength", path, 0);
    const uint64_t hi = count(s, "maxLength", path, UINT64_MAX);
    if (lo > hi) error(path, "\"minLength\" is above \"maxLength\"");
    if (s.contains("format")) {
      if (!s["format"].is_string()) error(path + "/format", "\"format\" must be a string");
      const std::string f = s["format"].get<std::string>();
      static const std::map<std::string, std::string> kFormats = {
          {"date", "date"},
          {"time", "time"},
          {"date-time", "date \"T\" time"},
          {"uuid", "hex{8} \"-\" hex{4} \"-\" hex{4} \"-\" hex{4} \"-\" hex{12}"}};
      const auto it = kFormats.find(f);
      if (it != kFormats.end()) {
        if (s.contains("minLength") || s.contains("maxLength"))
          error(path, "\"minLength\"/\"maxLength\" with \"format\" are not supported");
        return rule(hint, "\"\\\"\" " + it->second + " \"\\\"\"");
      }
      if (opt_.strict) error(path + "/format", "unknown format \"{}\" (strict)", f);
    }
    if (lo == 0 && hi == UINT64_MAX) return "string";
    return rule(hint, "\"\\\"\" " +
                          (hi == UINT64_MAX ? fmt::format("char{{{},}}", lo)
                                            : fmt::format("char{{{},{}}}", lo, hi)) +
                          " \"\\\"\"");
  }

  // Reads an integer bound (rounded inwards); false when absent.
  bool bound(const json& s, const char* key, bool lower, const std::string& path, int64_t* out) {
    if (!s.contains(key)) return false;
    const json& v = s[key];
    if (v.is_boolean()) return false;  // draft-4 exclusive flags, read with minimum/maximum
    if (!v.is_number()) error(path + "/" + key, "\"{}\" must be a number", key);
    if (v.is_number_integer() && !v.is_number_unsigned()) {
      *out = v.get<int64_t>();
    } else {
      const double d = lower ? std::ceil(v.get<double>()) : std::floor(v.get<double>());
      if (!(d >= -9.2e18 && d <= 9.2e18)) error(path + "/" + key, "\"{}\" is out of range", key);
      *out = static_cast<int64_t>(d);
    }
    return true;
  }

  std::string integer_rule(const json& s, const std::string& path, const std::string& hint) {
    int64_t lo = INT64_MIN, hi = INT64_MAX, v = 0;
    bool has_lo = false, has_hi = false;
    const bool draft4_lo = s.contains("exclusiveMinimum") && s["exclusiveMinimum"] == true;
    const bool draft4_hi = s.contains("exclusiveMaximum") && s["exclusiveMaximum"] == true;
    if (bound(s, "minimum", true, path, &v)) lo = v, has_lo = true;
    if (bound(s, "maximum", false, path, &v)) hi = v, has_hi = true;
    if (draft4_lo && has_lo) lo = lo == INT64_MAX ? lo : lo + 1;
    if (draft4_hi && has_hi) hi = hi == INT64_MIN ? hi : hi - 1;
    if (s.contains("exclusiveMinimum") && !s["exclusiveMinimum"].is_boolean()) {
      const json& e = s["exclusiveMinimum"];
      if (!e.is_number()) error(path + "/exclusiveMinimum", "must be a number");
      const double d = e.get<double>();
      const double f = std::floor(d) + 1;
      if (!(f <= 9.2e18 && f >= -9.2e18)) error(path + "/exclusiveMinimum", "is out of range");
      lo = std::max(lo, static_cast<int64_t>(f)), has_lo = true;
    }
    if (s.contains("exclusiveMaximum") && !s["exclusiveMaximum"].is_boolean()) {
      const json& e = s["exclusiveMaximum"];
      if (!e.is_number()) error(path + "/exclusiveMaximum", "must be a number");
      const double d = e.get<double>();
      const double c = std::ceil(d) - 1;
      if (!(c <= 9.2e18 && c >= -9.2e18)) error(path + "/exclusiveMaximum", "is out of range");
      hi = std::min(hi, static_cast<int64_t>(c)), has_hi = true;
    }
    if (!has_lo && !has_hi) return "integer";
    if (lo > hi) error(path, "no integer lies within the bounds");
    std::vector<std::string> alts;
    auto magnitude = [](int64_t x) { return x < 0 ? uint64_t(0) - uint64_t(x) : uint64_t(x); };
    if (lo < 0) {  // negatives -max(|hi|,1) .. -|lo|, written "-" then the magnitude
      const uint64_t from = hi < 0 ? magnitude(hi) : 1;
      const uint64_t to = has_lo ? magnitude(lo) : UINT64_MAX;
      alts.push_back("\"-\" " + uint_range(from, to));
    }
    if (hi >= 0)
      alts.push_back(uint_range(lo > 0 ? uint64_t(lo) : 0, has_hi ? uint64_t(hi) : UINT64_MAX));
    return rule(hint, join(alts, " | "));
  }

  // The members of an object in schema order: required ones always, optional ones maybe, extra
  // ones (additionalProperties) last. F(i) starts the member list at property i with nothing
  // written yet; R(i) continues it after at least one member (so it writes the commas).
  std::string object_rule(const json& s, const std::string& path, const std::string& hint,
                          int depth) {
    const json empty = json::object();
    const json& props = s.contains("properties") ? s["properties"] : empty;
    if (!props.is_object()) error(path + "/properties", "\"properties\" must be an object");
    std::set<std::string> required;
    if (s.contains("required")) {
      const json& r = s["required"];
      if (!r.is_array()) error(path + "/required", "\"required\" must be an array of strings");
      for (const auto& x : r) {
        if (!x.is_string()) error(path + "/required", "\"required\" must be an array of strings");
        required.insert(x.get<std::string>());
      }
    }
    const json* extra = nullptr;  // the schema of additional members, if allowed
    const json any = true;
    if (s.contains("additionalProperties")) {
      const json& a = s["additionalProperties"];
      if (!a.is_boolean() && !a.is_object())
        error(path + "/additionalProperties", "must be a boolean or a schema");
      if (a != false) extra = &a;
    } else if (props.empty()) {
      extra = &any;  // {"type": "object"}: any object
    }
    std::vector<std::pair<std::string, const json*>> members;
    std::vector<std::string> member_paths;
    for (const auto& [key, sub] : props.items()) {
      members.emplace_back(key, &sub);
      member_paths.push_back(path + "/properties/" + pointer_escape(key));
    }
    for (const auto& key : required) {
      if (props.contains(key)) continue;
      if (!extra)
        error(path + "/required", "required property \"{}\" is not allowed by the schema", key);
      members.emplace_back(key, extra);
      member_paths.push_back(path + "/additionalProperties");
    }
    if (s.contains("minProperties") && count(s, "minProperties", path, 0) > required.size())
      error(path, "\"minProperties\" above the number of required properties is not supported");
    if (s.contains("maxProperties") &&
        (extra || count(s, "maxProperties", path, 0) < members.size()))
      error(path, "\"maxProperties\" is not supported here");
    if (members.empty() && extra && *extra == true) return "object";

    std::vector<std::string> kvs;
    for (size_t i = 0; i < members.size(); ++i) {
      const std::string value =
          visit(*members[i].second, member_paths[i], hint + "-" + members[i].first, depth + 1);
      kvs.push_back(gbnf_literal(json(members[i].first).dump()) + " ws \":\" ws " + value + " ws");
    }
    std::string extra_kv;
    if (extra) {
      const std::string value =
          visit(*extra, path + "/additionalProperties", hint + "-extra", depth + 1);
      extra_kv = rule(hint + "-extra-kv",
                      other_key(members, path, hint) + " ws \":\" ws " + value + " ws");
    }
    const size_t n = members.size();
    std::vector<std::string> r(n + 1), f(n + 1);
    r[n] = extra ? rule(hint + "-r", "( \",\" ws " + extra_kv + " )*") : "";
    f[n] = extra ? rule(hint + "-f", "( " + extra_kv + " ( \",\" ws " + extra_kv + " )* )?") : "";
    for (size_t i = n; i-- > 0;) {
      const bool req = required.count(members[i].first) > 0;
      const std::string rest = r[i + 1].empty() ? "" : " " + r[i + 1];
      const std::string sep = "\",\" ws " + kvs[i] + rest;
      r[i] = rule(hint + "-r", req ? sep : sep + (r[i + 1].empty() ? " | \"\"" : " | " + r[i + 1]));
      const std::string first = kvs[i] + rest;
      f[i] = rule(hint + "-f",
                  req ? first : first + (f[i + 1].empty() ? " | \"\"" : " | " + f[i + 1]));
    }
    return rule(hint, "\"{\" ws " + f[0] + " \"}\"");
  }

  // A key string that is none of the declared member names: a trie over their characters where
  // every node may leave the trie with a different character (then anything), and may stop only
  // where no declared name ends.
  std::string other_key(const std::vector<std::pair<std::string, const json*>>& members,
                        const std::string& path, const std::string& hint) {
    if (members.empty()) return "string";
    std::vector<std::u32string> keys;
    for (const auto& [key, unused] : members) {
      std::u32string k;
      for (size_t i = 0; i < key.size();) {
        const auto c = static_cast<unsigned char>(key[i]);
        const int len = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
        uint32_t cp = len == 1 ? c : c & (0x3Fu >> (len - 1));
        for (int j = 1; j < len && i + static_cast<size_t>(j) < key.size(); ++j)
          cp = cp << 6 | (static_cast<unsigned char>(key[i + static_cast<size_t>(j)]) & 0x3Fu);
        if (cp < 0x20 || cp == '"' || cp == '\\')
          error(path, "additional properties next to a property name that needs JSON escapes");
        k += static_cast<char32_t>(cp);
        if (k.size() > kMaxKeyLength)
          error(path, "property names over {} characters next to additional properties",
                kMaxKeyLength);
        i += static_cast<size_t>(len);
      }
      keys.push_back(k);
    }
    std::sort(keys.begin(), keys.end());
    return "\"\\\"\" " + trie_rule(keys, 0, keys.size(), 0, hint) + " \"\\\"\"";
  }

  std::string trie_rule(const std::vector<std::u32string>& keys, size_t from, size_t to,
                        size_t depth, const std::string& hint) {
    bool ends_here = false;
    std::vector<std::string> alts;
    std::string others = "[^\"\\\\\\x00-\\x1F";
    for (size_t i = from; i < to;) {
      if (keys[i].size() == depth) {
        ends_here = true;
        ++i;
        continue;
      }
      const char32_t c = keys[i][depth];
      size_t j = i;
      while (j < to && keys[j].size() > depth && keys[j][depth] == c) ++j;
      const std::string ch = fmt::format("\\U{:08X}", static_cast<uint32_t>(c));
      alts.push_back("\"" + ch + "\" " + trie_rule(keys, i, j, depth + 1, hint));
      others += ch;
      i = j;
    }
    alts.push_back(others + "] char*");
    alts.push_back("\"\\\\\" ( [\"\\\\/bfnrt] | \"u\" hex4 ) char*");
    if (!ends_here) alts.push_back("\"\"");
    return rule(hint + "-key", join(alts, " | "));
  }

  std::string array_rule(const json& s, const std::string& path, const std::string& hint,
                         int depth) {
    const uint64_t lo = count(s, "minItems", path, 0);
    const uint64_t hi = count(s, "maxItems", path, UINT64_MAX);
    if (lo > hi) error(path, "\"minItems\" is above \"maxItems\"");
    const json* tuple = nullptr;
    std::string tuple_key = "prefixItems";
    if (s.contains("prefixItems")) tuple = &s["prefixItems"];
    if (s.contains("items") && s["items"].is_array()) tuple = &s["items"], tuple_key = "items";
    if (tuple && !tuple->is_array())
      error(path + "/prefixItems", "\"prefixItems\" must be an array");
    // The schema of items after the tuple: `items` (or additionalItems for a draft-4 tuple);
    // nullptr: none allowed. Absent means any value, but only emitted when minItems needs it.
    std::string extra = "value";
    std::string extra_path = path + "/items";
    bool extra_allowed = true;
    const char* extra_key = tuple_key == "items" ? "additionalItems" : "items";
    if (s.contains(extra_key)) {
      const json& e = s[extra_key];
      if (e == false) {
        extra_allowed = false;
      } else {
        if (!e.is_object() && !e.is_boolean())
          error(path + "/" + extra_key, "\"{}\" must be a schema", extra_key);
        extra = visit(e, path + "/" + extra_key, hint + "-item", depth + 1);
      }
    }
    std::vector<std::string> seq;
    uint64_t n_tuple = 0;
    if (tuple) {
      n_tuple = std::min<uint64_t>(tuple->size(), hi);
      for (uint64_t i = 0; i < n_tuple; ++i)
        seq.push_back(visit((*tuple)[i], path + "/" + tuple_key + "/" + std::to_string(i),
                            hint + "-" + std::to_string(i), depth + 1) +
                      " ws");
      // Without items, a tuple is written whole: shorter arrays are valid too, never needed.
      if (s.contains(extra_key) || lo > n_tuple) {
        if (lo > n_tuple && (!extra_allowed || n_tuple < tuple->size()))
          error(path, "\"minItems\" cannot be met");
      } else {
        extra_allowed = false;
      }
    }
    const uint64_t more_lo = lo > n_tuple ? lo - n_tuple : 0;
    const uint64_t more_hi = !extra_allowed ? 0 : hi == UINT64_MAX ? hi : hi - n_tuple;
    std::string body;
    if (!seq.empty()) {
      body = join(seq, " \",\" ws ");
      if (more_hi > 0) body += " " + repeat("\",\" ws " + extra + " ws", more_lo, more_hi);
    } else if (more_hi == 0) {
      body = "";
    } else {
      const std::string first = extra + " ws";
      const std::string rest = repeat("\",\" ws " + extra + " ws", more_lo ? more_lo - 1 : 0,
                                      more_hi == UINT64_MAX ? more_hi : more_hi - 1);
      body = more_lo ? first + " " + rest : "( " + first + " " + rest + " )?";
    }
    return rule(hint, "\"[\" ws " + body + " \"]\"");
  }

  json merge_all_of(const json& s, const std::string& path, int depth) {
    const json& list = s["allOf"];
    if (!list.is_array() || list.empty())
      error(path + "/allOf", "\"allOf\" must be a non-empty array");
    json merged = {{"type", "object"}, {"properties", json::object()}};
    std::vector<json> required;
    std::vector<const json*> parts = {&s};
    for (size_t i = 0; i < list.size(); ++i) parts.push_back(&list[i]);
    for (size_t i = 0; i < parts.size(); ++i) {
      const std::string p = i == 0 ? path : path + "/allOf/" + std::to_string(i - 1);
      const json* x = parts[i];
      for (int hops = 0; x->is_object() && x->contains("$ref") && hops <= kMaxDepth; ++hops)
        x = &resolve((*x)["$ref"], p);
      if (!x->is_object()) error(p, "\"allOf\" is only supported over object schemas");
      for (const auto& [key, value] : x->items()) {
        if (i == 0 && key == "allOf") continue;
        if (key == "properties" && value.is_object()) {
          for (const auto& [name, sub] : value.items()) {
            if (merged["properties"].contains(name) && merged["properties"][name] != sub)
              error(p, "\"allOf\" branches disagree on property \"{}\"", name);
            merged["properties"][name] = sub;
          }
        } else if (key == "required" && value.is_array()) {
          for (const auto& r : value) merged["required"].push_back(r);
        } else if (key == "type") {
          if (value != "object") error(p, "\"allOf\" is only supported over object schemas");
        } else if (key == "additionalProperties") {
          if (value != false) error(p, "\"allOf\" with additional properties is not supported");
          merged[key] = false;
        } else if (!kAnnotations.count(key)) {
          error(p, "\"allOf\" is only supported over object schemas (found \"{}\")", key);
        }
      }
    }
    (void)depth;
    return merged;
  }

  const json& resolve(const json& r, const std::string& path) {
    if (!r.is_string()) error(path, "\"$ref\" must be a string");
    const std::string ref = r.get<std::string>();
    if (ref.empty() || ref[0] != '#')
      error(path, "only local \"$ref\"s (#/...) are supported: {}", ref);
    try {
      return root_.at(json::json_pointer(ref.substr(1)));
    } catch (const json::exception&) {
      error(path, "\"$ref\" {} does not resolve", ref);
    }
  }

  std::string ref(const json& r, const std::string& path, int depth) {
    const json& target = resolve(r, path);
    const std::string key = r.get<std::string>();
    if (auto it = refs_.find(key); it != refs_.end()) return it->second;
    const std::string name = fresh("ref-" + key.substr(key.rfind('/') + 1));
    refs_[key] = name;  // before visiting: recursive schemas refer back to it
    const std::string body = visit(target, key, name, depth + 1);
    rules_.emplace_back(name, body);
    return name;
  }

  const json& root_;
  JsonSchemaOptions opt_;
  std::vector<std::pair<std::string, std::string>> rules_;
  std::map<std::string, std::string> by_body_, refs_;
  std::set<std::string> used_;
};

}  // namespace

std::string json_schema_to_gbnf(const nlohmann::ordered_json& schema,
                                const JsonSchemaOptions& options) {
  std::string gbnf;
  try {
    gbnf = Converter(schema, options).run();
  } catch (const nlohmann::ordered_json::exception& e) {
    fail("json schema: bad value: {}", e.what());  // e.g. invalid UTF-8 in a string
  }
  try {
    (void)Grammar::parse(gbnf);
  } catch (const Error& e) {
    // Only schemas that recurse through $ref without reading input get here.
    fail("json schema: its recursion never reads input ({})", e.what());
  }
  return gbnf;
}

std::string json_object_gbnf() {
  return std::string("root ::= object ws\n") + kPrimitives;
}

nlohmann::ordered_json parse_json_schema(std::string_view text, const JsonSchemaOptions& options) {
  nlohmann::ordered_json schema;
  try {
    schema = nlohmann::ordered_json::parse(text);
  } catch (const nlohmann::ordered_json::exception& e) {
    fail("json schema: not valid JSON: {}", e.what());
  }
  (void)json_schema_to_gbnf(schema, options);
  return schema;
}

}  // namespace flashrt

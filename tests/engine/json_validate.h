// A small JSON Schema validator for the tests of engine/json_schema: the keywords the converter
// supports, with the standard's semantics (so an absent additionalProperties allows extra members,
// unlike the converter's grammars, which are stricter). Returns "" when `doc` is valid, else why.
#pragma once
#include <nlohmann/json.hpp>

#include <cmath>
#include <regex>
#include <string>

namespace flashrt::test {

using ojson = nlohmann::ordered_json;

inline size_t code_points(const std::string& s) {
  size_t n = 0;
  for (const char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

inline bool has_type(const ojson& v, const std::string& t) {
  if (t == "null") return v.is_null();
  if (t == "boolean") return v.is_boolean();
  if (t == "string") return v.is_string();
  if (t == "object") return v.is_object();
  if (t == "array") return v.is_array();
  if (t == "number") return v.is_number();
  if (t == "integer")
    return v.is_number_integer() ||
           (v.is_number_float() && v.get<double>() == std::floor(v.get<double>()));
  return false;
}

inline bool format_ok(const std::string& f, const std::string& s) {
  static const std::string date = R"([0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01]))";
  static const std::string time =
      R"(([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9]))";
  if (f == "date") return std::regex_match(s, std::regex(date));
  if (f == "time") return std::regex_match(s, std::regex(time));
  if (f == "date-time") return std::regex_match(s, std::regex(date + "T" + time));
  if (f == "uuid")
    return std::regex_match(
        s,
        std::regex("[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"));
  return true;  // other formats are annotations
}

inline std::string validate(const ojson& doc, const ojson& schema, const ojson& root) {
  if (schema.is_boolean()) return schema.get<bool>() ? "" : "schema false";
  const ojson& s = schema;
  if (s.contains("$ref")) {
    const std::string ref = s["$ref"].get<std::string>();
    return validate(doc, root.at(ojson::json_pointer(ref.substr(1))), root);
  }
  if (s.contains("const") && doc != s["const"]) return "not the const " + s["const"].dump();
  if (s.contains("enum")) {
    bool found = false;
    for (const auto& v : s["enum"]) found = found || v == doc;
    if (!found) return "not in the enum";
  }
  if (s.contains("anyOf")) {
    bool any = false;
    for (const auto& sub : s["anyOf"]) any = any || validate(doc, sub, root).empty();
    if (!any) return "no anyOf branch matches";
  }
  if (s.contains("oneOf")) {
    int n = 0;
    for (const auto& sub : s["oneOf"]) n += validate(doc, sub, root).empty();
    if (n != 1) return "oneOf matches " + std::to_string(n) + " branches";
  }
  if (s.contains("allOf"))
    for (const auto& sub : s["allOf"])
      if (auto e = validate(doc, sub, root); !e.empty()) return "allOf: " + e;
  if (s.contains("type")) {
    bool ok = false;
    if (s["type"].is_string()) {
      ok = has_type(doc, s["type"].get<std::string>());
    } else {
      for (const auto& t : s["type"]) ok = ok || has_type(doc, t.get<std::string>());
    }
    if (!ok) return "wrong type: " + doc.dump();
  }
  if (doc.is_string()) {
    const std::string v = doc.get<std::string>();
    if (s.contains("minLength") && code_points(v) < s["minLength"].get<size_t>()) return "short";
    if (s.contains("maxLength") && code_points(v) > s["maxLength"].get<size_t>()) return "long";
    if (s.contains("format") && !format_ok(s["format"].get<std::string>(), v))
      return "bad " + s["format"].get<std::string>() + ": " + v;
  }
  if (doc.is_number()) {
    const double v = doc.get<double>();
    const bool d4_lo = s.contains("exclusiveMinimum") && s["exclusiveMinimum"] == true;
    const bool d4_hi = s.contains("exclusiveMaximum") && s["exclusiveMaximum"] == true;
    if (s.contains("minimum") &&
        (d4_lo ? v <= s["minimum"].get<double>() : v < s["minimum"].get<double>()))
      return "below the minimum: " + doc.dump();
    if (s.contains("maximum") &&
        (d4_hi ? v >= s["maximum"].get<double>() : v > s["maximum"].get<double>()))
      return "above the maximum: " + doc.dump();
    if (s.contains("exclusiveMinimum") && s["exclusiveMinimum"].is_number() &&
        v <= s["exclusiveMinimum"].get<double>())
      return "not above the exclusive minimum";
    if (s.contains("exclusiveMaximum") && s["exclusiveMaximum"].is_number() &&
        v >= s["exclusiveMaximum"].get<double>())
      return "not below the exclusive maximum";
  }
  if (doc.is_object()) {
    if (s.contains("required"))
      for (const auto& r : s["required"])
        if (!doc.contains(r.get<std::string>())) return "missing " + r.get<std::string>();
    for (const auto& [key, value] : doc.items()) {
      if (s.contains("properties") && s["properties"].contains(key)) {
        if (auto e = validate(value, s["properties"][key], root); !e.empty()) return key + ": " + e;
      } else if (s.contains("additionalProperties")) {
        if (auto e = validate(value, s["additionalProperties"], root); !e.empty())
          return "extra " + key + ": " + e;
      }
    }
  }
  if (doc.is_array()) {
    if (s.contains("minItems") && doc.size() < s["minItems"].get<size_t>()) return "few items";
    if (s.contains("maxItems") && doc.size() > s["maxItems"].get<size_t>()) return "many items";
    size_t tuple = 0;
    const ojson* rest = nullptr;
    if (s.contains("prefixItems")) {
      tuple = s["prefixItems"].size();
      for (size_t i = 0; i < tuple && i < doc.size(); ++i)
        if (auto e = validate(doc[i], s["prefixItems"][i], root); !e.empty())
          return "item " + std::to_string(i) + ": " + e;
      if (s.contains("items")) rest = &s["items"];
    } else if (s.contains("items") && s["items"].is_array()) {
      tuple = s["items"].size();
      for (size_t i = 0; i < tuple && i < doc.size(); ++i)
        if (auto e = validate(doc[i], s["items"][i], root); !e.empty())
          return "item " + std::to_string(i) + ": " + e;
      if (s.contains("additionalItems")) rest = &s["additionalItems"];
    } else if (s.contains("items")) {
      rest = &s["items"];
    }
    if (rest)
      for (size_t i = tuple; i < doc.size(); ++i)
        if (auto e = validate(doc[i], *rest, root); !e.empty())
          return "item " + std::to_string(i) + ": " + e;
  }
  return "";
}

inline std::string validate(const ojson& doc, const ojson& schema) {
  return validate(doc, schema, schema);
}

}  // namespace flashrt::test

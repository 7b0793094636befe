#include "server/json_fields.h"

#include <cmath>

#include "server/api_error.h"

namespace flashrt::server {

namespace {

// nlohmann's parser keeps its own stack, but a value nested a million levels deep still costs
// memory and time to build and destroy; no request needs more than a few levels.
void check_depth(std::string_view body) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : body) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth)
        bad_request("", "invalid_json", "the request body nests deeper than {} levels",
                    kMaxJsonDepth);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
}

const char* type_name(const nlohmann::json& v) {
  if (v.is_string()) return "a string";
  if (v.is_boolean()) return "a boolean";
  if (v.is_number()) return "a number";
  if (v.is_array()) return "an array";
  if (v.is_object()) return "an object";
  return "null";
}

}  // namespace

nlohmann::json parse_body(std::string_view body) {
  if (body.empty()) bad_request("", "invalid_json", "the request body is empty (expected JSON)");
  check_depth(body);
  nlohmann::json j = nlohmann::json::parse(body.begin(), body.end(), nullptr,
                                           /*allow_exceptions=*/false);
  if (j.is_discarded()) bad_request("", "invalid_json", "the request body is not valid JSON");
  if (!j.is_object())
    bad_request("", "invalid_json", "the request body must be a JSON object, not {}", type_name(j));
  return j;
}

Fields::Fields(const nlohmann::json& obj, std::string prefix)
    : obj_(obj), prefix_(std::move(prefix)) {}

std::string Fields::path(const char* key) const {
  return prefix_.empty() ? std::string(key) : prefix_ + "." + key;
}

const nlohmann::json* Fields::get(const char* key) const {
  if (!obj_.is_object()) return nullptr;
  const auto it = obj_.find(key);
  if (it == obj_.end() || it->is_null()) return nullptr;
  return &*it;
}

std::optional<std::string> Fields::str(const char* key) const {
  const auto* v = get(key);
  if (!v) return std::nullopt;
  if (!v->is_string())
    bad_request(path(key), "invalid_type", "'{}' must be a string, not {}", path(key),
                type_name(*v));
  return v->get<std::string>();
}

int64_t integer_value(const nlohmann::json& v, const std::string& what, int64_t lo, int64_t hi) {
  int64_t x = 0;
  if (v.is_number_integer()) {
    x = v.get<int64_t>();
  } else if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(hi))
      bad_request(what, "invalid_value", "'{}' must be at most {} (got {})", what, hi, u);
    x = static_cast<int64_t>(u);
  } else if (v.is_number_float()) {
    const double d = v.get<double>();
    // Outside [-2^62, 2^62] or fractional: not an integer we can hold.
    if (!std::isfinite(d) || std::trunc(d) != d || std::fabs(d) > 4.6e18)
      bad_request(what, "invalid_type", "'{}' must be an integer (got {})", what, d);
    x = static_cast<int64_t>(d);
  } else {
    bad_request(what, "invalid_type", "'{}' must be an integer, not {}", what, type_name(v));
  }
  if (x < lo || x > hi)
    bad_request(what, "invalid_value", "'{}' must be between {} and {} (got {})", what, lo, hi, x);
  return x;
}

std::optional<int64_t> Fields::integer(const char* key, int64_t lo, int64_t hi) const {
  const auto* v = get(key);
  if (!v) return std::nullopt;
  return integer_value(*v, path(key), lo, hi);
}

std::optional<double> Fields::number(const char* key, double lo, double hi) const {
  const auto* v = get(key);
  if (!v) return std::nullopt;
  if (!v->is_number())
    bad_request(path(key), "invalid_type", "'{}' must be a number, not {}", path(key),
                type_name(*v));
  const double d = v->get<double>();
  if (!(d >= lo && d <= hi))
    bad_request(path(key), "invalid_value", "'{}' must be between {} and {} (got {})", path(key),
                lo, hi, d);
  return d;
}

std::optional<bool> Fields::boolean(const char* key) const {
  const auto* v = get(key);
  if (!v) return std::nullopt;
  if (!v->is_boolean())
    bad_request(path(key), "invalid_type", "'{}' must be a boolean, not {}", path(key),
                type_name(*v));
  return v->get<bool>();
}

std::optional<std::vector<int64_t>> Fields::integers(const char* key, int64_t lo, int64_t hi,
                                                     size_t max_len) const {
  const auto* v = get(key);
  if (!v) return std::nullopt;
  if (!v->is_array())
    bad_request(path(key), "invalid_type", "'{}' must be an array of integers, not {}", path(key),
                type_name(*v));
  if (v->size() > max_len)
    bad_request(path(key), "invalid_value", "'{}' holds {} values (at most {})", path(key),
                v->size(), max_len);
  std::vector<int64_t> out;
  out.reserve(v->size());
  for (size_t i = 0; i < v->size(); ++i)
    out.push_back(integer_value((*v)[i], path(key) + "[" + std::to_string(i) + "]", lo, hi));
  return out;
}

}  // namespace flashrt::server

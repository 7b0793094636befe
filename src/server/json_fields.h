// Reading untrusted JSON request bodies: a parse that refuses absurd nesting before it starts, and
// typed access to an object's fields whose errors name the field (OpenAI's "param"). A field set to
// null counts as absent, as OpenAI's API treats it. Unknown fields are ignored: clients send
// extras.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace flashrt::server {

inline constexpr int kMaxJsonDepth = 64;

// Parses a request body that must be a JSON object. Malformed JSON, another top-level type or
// nesting deeper than kMaxJsonDepth: ApiError 400.
nlohmann::json parse_body(std::string_view body);

class Fields {
 public:
  // `obj` must outlive this; `prefix` names it in errors ("messages[2]").
  Fields(const nlohmann::json& obj, std::string prefix = "");

  // The raw value, or nullptr when absent or null.
  const nlohmann::json* get(const char* key) const;
  bool has(const char* key) const { return get(key) != nullptr; }

  std::optional<std::string> str(const char* key) const;
  // An integer (a float with an integral value is accepted) within [lo, hi].
  std::optional<int64_t> integer(const char* key, int64_t lo, int64_t hi) const;
  std::optional<double> number(const char* key, double lo, double hi) const;
  std::optional<bool> boolean(const char* key) const;
  // An array of integers, each within [lo, hi], at most max_len long.
  std::optional<std::vector<int64_t>> integers(const char* key, int64_t lo, int64_t hi,
                                               size_t max_len) const;

  // The field's name as errors report it: prefix.key.
  std::string path(const char* key) const;

 private:
  const nlohmann::json& obj_;
  std::string prefix_;
};

// The same checks on a bare value; `what` names it in errors.
int64_t integer_value(const nlohmann::json& v, const std::string& what, int64_t lo, int64_t hi);

}  // namespace flashrt::server

#include "formats/hf_config.h"

#include "core/error.h"

namespace flashrt {

int64_t HFConfig::get_int(const std::string& key) const {
  if (!has(key)) fail("{}: missing '{}'", path_, key);
  const auto& v = j_[key];
  if (!v.is_number_integer()) fail("{}: '{}' should be an integer, found {}", path_, key, v.dump());
  return v.get<int64_t>();
}

int64_t HFConfig::get_int(const std::string& key, int64_t def) const {
  return has(key) ? get_int(key) : def;
}

double HFConfig::get_float(const std::string& key) const {
  if (!has(key)) fail("{}: missing '{}'", path_, key);
  const auto& v = j_[key];
  if (!v.is_number()) fail("{}: '{}' should be a number, found {}", path_, key, v.dump());
  return v.get<double>();
}

double HFConfig::get_float(const std::string& key, double def) const {
  return has(key) ? get_float(key) : def;
}

bool HFConfig::get_bool(const std::string& key, bool def) const {
  if (!has(key)) return def;
  const auto& v = j_[key];
  if (!v.is_boolean()) fail("{}: '{}' should be true or false, found {}", path_, key, v.dump());
  return v.get<bool>();
}

std::string HFConfig::get_string(const std::string& key, const std::string& def) const {
  if (!has(key)) return def;
  const auto& v = j_[key];
  if (!v.is_string()) fail("{}: '{}' should be a string, found {}", path_, key, v.dump());
  return v.get<std::string>();
}

std::vector<int64_t> HFConfig::get_int_list(const std::string& key) const {
  std::vector<int64_t> out;
  if (!has(key)) return out;
  const auto& v = j_[key];
  if (v.is_number_integer()) return {v.get<int64_t>()};
  if (!v.is_array())
    fail("{}: '{}' should be an integer or a list, found {}", path_, key, v.dump());
  for (const auto& x : v) {
    if (!x.is_number_integer()) fail("{}: '{}' holds a non-integer {}", path_, key, x.dump());
    out.push_back(x.get<int64_t>());
  }
  return out;
}

std::vector<std::string> HFConfig::get_string_list(const std::string& key) const {
  std::vector<std::string> out;
  if (!has(key)) return out;
  const auto& v = j_[key];
  if (!v.is_array()) fail("{}: '{}' should be a list, found {}", path_, key, v.dump());
  for (const auto& x : v) {
    if (!x.is_string()) fail("{}: '{}' holds a non-string {}", path_, key, x.dump());
    out.push_back(x.get<std::string>());
  }
  return out;
}

HFConfig HFConfig::child(const std::string& key) const {
  if (!has(key)) return HFConfig(nlohmann::json::object(), path_);
  if (!j_[key].is_object()) fail("{}: '{}' should be an object", path_, key);
  return HFConfig(j_[key], path_ + ":" + key);
}

}  // namespace flashrt

// Typed access to an HF config.json with errors that name the file and key.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace flashrt {

class HFConfig {
 public:
  HFConfig(const nlohmann::json& j, std::string path) : j_(j), path_(std::move(path)) {}

  bool has(const std::string& key) const { return j_.contains(key) && !j_[key].is_null(); }
  int64_t get_int(const std::string& key) const;
  int64_t get_int(const std::string& key, int64_t def) const;
  double get_float(const std::string& key) const;
  double get_float(const std::string& key, double def) const;
  bool get_bool(const std::string& key, bool def) const;
  std::string get_string(const std::string& key, const std::string& def) const;
  // An int or a list of ints (eos_token_id may be either).
  std::vector<int64_t> get_int_list(const std::string& key) const;
  // A nested object, or an empty object when absent.
  HFConfig child(const std::string& key) const;
  std::vector<std::string> get_string_list(const std::string& key) const;
  const std::string& path() const { return path_; }

 private:
  nlohmann::json j_;
  std::string path_;
};

}  // namespace flashrt

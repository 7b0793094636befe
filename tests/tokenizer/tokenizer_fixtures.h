// Shared fixtures of the tokenizer tests: the reference tokenizers (loaded once per process), the
// case files, and a minimal reader for the int64 tensors of the pycoder reference.safetensors.
#pragma once
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "test_paths.h"
#include "tokenizer/tokenizer.h"

namespace flashrt::tokenizer_test {

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open fixture " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return std::move(ss).str();
}

inline nlohmann::json read_json(const std::string& path) {
  return nlohmann::json::parse(read_file(path));
}

inline const Tokenizer& qwen3() {
  static const Tokenizer t =
      Tokenizer::from_hf_dir_or_file(shared_dir() + "/reference/qwen3-tokenizer");
  return t;
}

inline const Tokenizer& pycoder() {
  static const Tokenizer t =
      Tokenizer::from_hf_dir_or_file(shared_dir() + "/models/pycoder-hybrid-12m/tokenizer.json");
  return t;
}

struct TokenizerCases {
  std::vector<std::string> texts, decoded;
  std::vector<std::vector<int32_t>> ids;
};

inline const TokenizerCases& qwen3_cases() {
  static const TokenizerCases c = [] {
    const auto j = read_json(shared_dir() + "/reference/qwen3-tokenizer-cases.json");
    TokenizerCases c;
    c.texts = j.at("texts").get<std::vector<std::string>>();
    c.decoded = j.at("decoded").get<std::vector<std::string>>();
    c.ids = j.at("ids").get<std::vector<std::vector<int32_t>>>();
    return c;
  }();
  return c;
}

// Reads one int64 tensor from a safetensors file: 8-byte little-endian header length, a JSON
// header {name: {dtype, shape, data_offsets}}, then the raw data.
inline std::vector<int64_t> read_safetensors_i64(const std::string& path, const std::string& name) {
  const std::string file = read_file(path);
  uint64_t header_len = 0;
  if (file.size() < 8) throw std::runtime_error(path + ": too short");
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | static_cast<uint8_t>(file[i]);
  if (8 + header_len > file.size()) throw std::runtime_error(path + ": bad header length");
  const auto header = nlohmann::json::parse(file.substr(8, header_len));
  const auto& t = header.at(name);
  if (t.at("dtype") != "I64") throw std::runtime_error(name + " is not I64");
  const auto off = t.at("data_offsets").get<std::vector<uint64_t>>();
  const size_t base = 8 + header_len;
  if (off.size() != 2 || off[1] < off[0] || base + off[1] > file.size() || (off[1] - off[0]) % 8) {
    throw std::runtime_error(name + ": bad data_offsets");
  }
  std::vector<int64_t> v((off[1] - off[0]) / 8);
  std::memcpy(v.data(), file.data() + base + off[0], off[1] - off[0]);  // little-endian host
  return v;
}

// Runs `f`, expecting a flashrt::Error whose message contains every one of `parts`.
inline void expect_error(const std::function<void()>& f, std::vector<std::string> parts) {
  try {
    f();
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const auto& p : parts) {
      EXPECT_NE(msg.find(p), std::string::npos) << "message: " << msg << "\nexpected: " << p;
    }
    return;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected flashrt::Error, got another exception: " << e.what();
    return;
  }
  ADD_FAILURE() << "expected flashrt::Error, nothing was thrown";
}

inline std::string show_ids(const std::vector<int32_t>& ids, size_t from, size_t n = 8) {
  std::string s;
  for (size_t i = from; i < ids.size() && i < from + n; ++i) s += std::to_string(ids[i]) + " ";
  return s;
}

}  // namespace flashrt::tokenizer_test

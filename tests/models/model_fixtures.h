// Models under test: the reference checkpoints as HF folders and as GGUF files that flashrt itself
// converted (written once per test run into a temporary folder).
#pragma once
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "formats/gguf.h"
#include "models/model.h"
#include "reference.h"

namespace flashrt::testing {

inline std::string temp_dir() {
  static const std::string dir = [] {
    auto d =
        std::filesystem::temp_directory_path() / ("flashrt-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d.string();
  }();
  return dir;
}

// Converts the HF folder `hf_dir` to GGUF of `type` (cached per process) and returns its path.
inline std::string converted_gguf(const std::string& hf_dir, const std::string& type) {
  static std::mutex mu;
  static std::map<std::string, std::string> done;
  std::lock_guard<std::mutex> lock(mu);
  const std::string key = hf_dir + "|" + type;
  if (auto it = done.find(key); it != done.end()) return it->second;
  auto m = load_model(hf_dir);
  DType t;
  dtype_from_name(type, &t);
  GGUFWriter w;
  write_gguf(*m, w, t);
  const std::string out =
      temp_dir() + "/" + std::filesystem::path(hf_dir).filename().string() + "-" + type + ".gguf";
  w.write(out);
  done[key] = out;
  return out;
}

// "hf" or a GGUF type name.
inline std::string model_path(const std::string& hf_dir, const std::string& format) {
  return format == "hf" ? hf_dir : converted_gguf(hf_dir, format);
}

}  // namespace flashrt::testing

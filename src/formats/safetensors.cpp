#include "formats/safetensors.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"

namespace flashrt {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

bool parse_dtype(const std::string& s, DType* out) {
  static const std::map<std::string, DType> kMap = {
      {"F32", DType::F32}, {"F16", DType::F16}, {"BF16", DType::BF16},
      {"I8", DType::I8},   {"I16", DType::I16}, {"I32", DType::I32},
      {"I64", DType::I64}, {"F64", DType::F64}, {"U8", DType::U8},
  };
  auto it = kMap.find(s);
  if (it == kMap.end()) return false;
  *out = it->second;
  return true;
}

json read_json_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail("{}: cannot open", path);
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    fail("{}: invalid JSON: {}", path, e.what());
  }
}

}  // namespace

void SafetensorsFile::parse(const uint8_t* data, size_t size, const std::string& path,
                            std::map<std::string, TensorInfo>* out,
                            std::map<std::string, std::string>* meta) {
  if (size < 8) fail("{}: not a safetensors file (only {} bytes)", path, size);
  uint64_t header_len;
  std::memcpy(&header_len, data, 8);
  if (header_len > size - 8) {
    fail("{}: header length {} exceeds the file size {} (truncated or not safetensors)", path,
         header_len, size);
  }
  json header;
  try {
    header = json::parse(data + 8, data + 8 + header_len);
  } catch (const json::exception& e) {
    fail("{}: invalid JSON header: {}", path, e.what());
  }
  if (!header.is_object()) fail("{}: header is not a JSON object", path);
  const size_t base = 8 + header_len;
  const size_t payload = size - base;
  std::vector<std::pair<size_t, size_t>> ranges;
  for (auto& [name, v] : header.items()) {
    if (name == "__metadata__") {
      if (meta && v.is_object()) {
        for (auto& [k, mv] : v.items())
          if (mv.is_string()) (*meta)[k] = mv.get<std::string>();
      }
      continue;
    }
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") ||
        !v.contains("data_offsets"))
      fail("{}: tensor '{}' lacks dtype, shape or data_offsets", path, name);
    const auto& jd = v["dtype"];
    const auto& js = v["shape"];
    const auto& jo = v["data_offsets"];
    if (!jd.is_string() || !js.is_array() || !jo.is_array() || jo.size() != 2)
      fail("{}: tensor '{}' has a malformed entry", path, name);
    TensorInfo t;
    t.name = name;
    if (!parse_dtype(jd.get<std::string>(), &t.dtype))
      fail("{}: tensor '{}' has unsupported dtype {}", path, name, jd.get<std::string>());
    int64_t n = 1;
    for (const auto& d : js) {
      if (!d.is_number_unsigned() || d.get<uint64_t>() > (1ull << 40))
        fail("{}: tensor '{}' has an invalid dimension {}", path, name, d.dump());
      t.shape.push_back(d.get<int64_t>());
      if (t.shape.back() != 0 && n > (int64_t{1} << 42) / t.shape.back())
        fail("{}: tensor '{}' is implausibly large", path, name);
      n *= t.shape.back();
    }
    if (!jo[0].is_number_unsigned() || !jo[1].is_number_unsigned())
      fail("{}: tensor '{}' has non-integer data_offsets", path, name);
    const uint64_t b = jo[0].get<uint64_t>(), e = jo[1].get<uint64_t>();
    if (b > e || e > payload)
      fail("{}: tensor '{}' data [{}, {}) lies outside the {}-byte payload (truncated file?)", path,
           name, b, e, payload);
    if (e - b != dtype_bytes(t.dtype, n))
      fail("{}: tensor '{}' holds {} bytes but {} x {} needs {}", path, name, e - b,
           dtype_name(t.dtype), n, dtype_bytes(t.dtype, n));
    t.data = data + base + b;
    t.bytes = e - b;
    if (e > b) ranges.emplace_back(b, e);  // empty tensors occupy nothing
    (*out)[name] = std::move(t);
  }
  std::sort(ranges.begin(), ranges.end());
  size_t furthest = 0;  // end of the ranges seen so far: any start before it overlaps one of them
  for (const auto& [b, e] : ranges) {
    if (b < furthest) fail("{}: tensor data ranges overlap", path);
    furthest = std::max(furthest, e);
  }
}

std::vector<std::string> SafetensorsFile::add_file(const std::string& path) {
  files_.emplace_back(path);
  const auto& f = files_.back();
  std::map<std::string, TensorInfo> found;
  parse(f.data(), f.size(), path, &found, &metadata_);
  std::vector<std::string> names;
  for (auto& [name, t] : found) {
    if (tensors_.count(name)) fail("{}: tensor '{}' appears in more than one shard", path, name);
    names.push_back(name);
    tensors_[name] = std::move(t);
  }
  return names;
}

std::unique_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path_in) {
  auto st = std::unique_ptr<SafetensorsFile>(new SafetensorsFile());
  fs::path path(path_in);
  if (fs::is_directory(path)) {
    if (fs::exists(path / "model.safetensors.index.json")) {
      path /= "model.safetensors.index.json";
    } else if (fs::exists(path / "model.safetensors")) {
      path /= "model.safetensors";
    } else {
      fail("{}: no model.safetensors or model.safetensors.index.json in this folder", path_in);
    }
  }
  st->describe_ = path.string();
  if (path.string().ends_with(".json")) {
    const json index = read_json_file(path.string());
    if (!index.contains("weight_map") || !index["weight_map"].is_object())
      fail("{}: no weight_map object", path.string());
    std::set<std::string> shards;
    for (auto& [name, file] : index["weight_map"].items()) {
      if (!file.is_string())
        fail("{}: weight_map entry '{}' is not a file name", path.string(), name);
      const std::string shard = file.get<std::string>();
      if (shard.find('/') != std::string::npos || shard.find("..") != std::string::npos)
        fail("{}: shard name '{}' is not a plain file name", path.string(), shard);
      shards.insert(shard);
    }
    std::map<std::string, std::string> shard_of;  // tensor -> the shard that holds it
    for (const auto& s : shards)
      for (auto& name : st->add_file((path.parent_path() / s).string())) shard_of[name] = s;
    for (auto& [name, file] : index["weight_map"].items()) {
      const auto it = shard_of.find(name);
      if (it == shard_of.end() || it->second != file.get<std::string>())
        fail("{}: tensor '{}' listed for {} is not in that shard", path.string(), name,
             file.get<std::string>());
    }
  } else {
    st->add_file(path.string());
  }
  return st;
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> n;
  for (const auto& [k, v] : tensors_) n.push_back(k);
  return n;
}

}  // namespace flashrt

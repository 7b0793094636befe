// safetensors reader: a single `*.safetensors` file or a sharded set described by
// `model.safetensors.index.json`, memory-mapped. Validates the header fully (offsets within the
// file, sizes that match dtype x shape, no overlaps) so a malformed file is an error, never a
// crash.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/mapped_file.h"
#include "formats/tensor_source.h"

namespace flashrt {

class SafetensorsFile : public TensorSource {
 public:
  // `path` is a .safetensors file, an .index.json file, or a folder holding either.
  static std::unique_ptr<SafetensorsFile> open(const std::string& path);

  const TensorInfo* find(const std::string& name) const override;
  std::vector<std::string> names() const override;
  std::string describe() const override { return describe_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // Parses one file's header; public so the fuzz target can drive it over arbitrary bytes.
  static void parse(const uint8_t* data, size_t size, const std::string& path,
                    std::map<std::string, TensorInfo>* out,
                    std::map<std::string, std::string>* meta);

 private:
  // Maps and parses one file; returns the names of its tensors.
  std::vector<std::string> add_file(const std::string& path);
  std::vector<MappedFile> files_;
  std::map<std::string, TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
  std::string describe_;
};

}  // namespace flashrt

// GGUF v3 (llama.cpp's model file): reader (mmap, full validation) and writer (streamed, aligned,
// written to a temporary name and renamed). Tensor shapes are exposed outermost first like PyTorch;
// on disk GGUF lists dimensions innermost first (ne[0] = row length).
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/mapped_file.h"
#include "formats/tensor_source.h"

namespace flashrt {

enum class GGUFType : uint32_t {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12,
};

struct GGUFValue {
  GGUFType type = GGUFType::U32;
  GGUFType elem_type = GGUFType::U32;  // for arrays
  std::variant<uint64_t, int64_t, double, bool, std::string, std::vector<GGUFValue>> v;

  static GGUFValue u32(uint32_t x) { return {GGUFType::U32, GGUFType::U32, uint64_t{x}}; }
  static GGUFValue i32(int32_t x) { return {GGUFType::I32, GGUFType::U32, int64_t{x}}; }
  static GGUFValue u64(uint64_t x) { return {GGUFType::U64, GGUFType::U32, x}; }
  static GGUFValue f32(float x) { return {GGUFType::F32, GGUFType::U32, double{x}}; }
  static GGUFValue boolean(bool x) { return {GGUFType::BOOL, GGUFType::U32, x}; }
  static GGUFValue str(std::string s) { return {GGUFType::STRING, GGUFType::U32, std::move(s)}; }
  static GGUFValue str_array(const std::vector<std::string>& xs);
  static GGUFValue i32_array(const std::vector<int32_t>& xs);
  static GGUFValue u32_array(const std::vector<uint32_t>& xs);
  static GGUFValue f32_array(const std::vector<float>& xs);

  bool is_array() const { return type == GGUFType::ARRAY; }
  bool is_integer() const;
  bool is_number() const;
  // Typed reads; throw Error on a type mismatch (the caller adds the file/key context).
  int64_t as_int() const;
  double as_double() const;
  bool as_bool() const;
  const std::string& as_string() const;
  const std::vector<GGUFValue>& as_array() const;
  std::vector<std::string> as_string_array() const;
  std::vector<int64_t> as_int_array() const;
  std::vector<double> as_double_array() const;
  std::string to_display(size_t max_items = 8) const;  // short human-readable form
};

// GGML tensor type ids as stored in the file.
bool ggml_type_to_dtype(uint32_t ggml_type, DType* out);
uint32_t dtype_to_ggml_type(DType t);  // throws for types GGUF cannot hold

class GGUFFile : public TensorSource {
 public:
  static std::unique_ptr<GGUFFile> open(const std::string& path);
  // Parses a whole file image; used by open() and by the fuzz target. `data` must outlive the
  // result.
  static std::unique_ptr<GGUFFile> parse(const uint8_t* data, size_t size, const std::string& path);

  const TensorInfo* find(const std::string& name) const override;
  std::vector<std::string> names() const override;
  std::string describe() const override { return path_; }

  uint32_t version() const { return version_; }
  size_t alignment() const { return alignment_; }
  const std::vector<std::pair<std::string, GGUFValue>>& metadata() const { return kv_; }
  const GGUFValue* get_meta(const std::string& key) const;  // nullptr when absent
  // Typed metadata access with errors naming the file and key.
  int64_t get_int(const std::string& key) const;
  std::optional<int64_t> get_int_opt(const std::string& key) const;
  double get_float(const std::string& key) const;
  std::optional<double> get_float_opt(const std::string& key) const;
  std::string get_string(const std::string& key) const;
  std::optional<std::string> get_string_opt(const std::string& key) const;
  const std::vector<TensorInfo>& tensors() const { return tensors_; }

 private:
  MappedFile file_;
  std::string path_;
  uint32_t version_ = 0;
  size_t alignment_ = 32;
  std::vector<std::pair<std::string, GGUFValue>> kv_;
  std::map<std::string, size_t> kv_index_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> tensor_index_;
};

// Writes a GGUF file. Tensors are given as producers that write their bytes into a buffer, so a
// converter can quantize one tensor at a time without holding the whole model in memory.
class GGUFWriter {
 public:
  using Producer = std::function<void(uint8_t* dst)>;

  void set(const std::string& key, GGUFValue v);
  // `shape` outermost first (PyTorch order). The producer fills dtype_bytes(dtype, elements) bytes.
  void add_tensor(const std::string& name, DType dtype, std::vector<int64_t> shape,
                  Producer produce);
  void add_tensor_bytes(const std::string& name, DType dtype, std::vector<int64_t> shape,
                        const void* data);
  // Writes `path` via a temporary file, fsync and rename; shows progress when `progress_label` is
  // set.
  void write(const std::string& path, const std::string& progress_label = "") const;
  size_t alignment() const { return alignment_; }

 private:
  struct Pending {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    Producer produce;
  };
  std::vector<std::pair<std::string, GGUFValue>> kv_;
  std::vector<Pending> tensors_;
  size_t alignment_ = 32;
};

}  // namespace flashrt

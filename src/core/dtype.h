// Element types of weights, activations and state. Quantized types use llama.cpp's block layouts so
// GGUF files are used as they are; `block_elems` elements share one `block_bytes`-byte block.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace flashrt {

enum class DType : uint8_t { F32, F16, BF16, I8, I16, I32, I64, F64, Q8_0, Q4_0, Q4_K, Q6_K, U8 };

struct DTypeInfo {
  std::string_view name;
  int block_elems;  // 1 for plain types
  int block_bytes;  // bytes of one block (element size for plain types)
};

const DTypeInfo& dtype_info(DType t);
inline std::string_view dtype_name(DType t) {
  return dtype_info(t).name;
}
inline bool dtype_is_quantized(DType t) {
  return dtype_info(t).block_elems > 1;
}
// Parses a name as printed by dtype_name ("f32", "bf16", "q8_0", ...), case-insensitive.
bool dtype_from_name(std::string_view name, DType* out);
// Bytes of `n` elements; `n` must be a multiple of the block size (checked by callers that parse
// files).
inline size_t dtype_bytes(DType t, int64_t n) {
  const auto& i = dtype_info(t);
  return static_cast<size_t>(n / i.block_elems) * static_cast<size_t>(i.block_bytes);
}

}  // namespace flashrt

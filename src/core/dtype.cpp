#include "core/dtype.h"

#include <algorithm>
#include <cctype>
#include <string>

namespace flashrt {

namespace {
// Indexed by DType.
constexpr DTypeInfo kInfo[] = {
    {"f32", 1, 4},      {"f16", 1, 2},      {"bf16", 1, 2}, {"i8", 1, 1},     {"i16", 1, 2},
    {"i32", 1, 4},      {"i64", 1, 8},      {"f64", 1, 8},  {"q8_0", 32, 34}, {"q4_0", 32, 18},
    {"q4_k", 256, 144}, {"q6_k", 256, 210}, {"u8", 1, 1},
};
}  // namespace

const DTypeInfo& dtype_info(DType t) {
  return kInfo[static_cast<int>(t)];
}

bool dtype_from_name(std::string_view name, DType* out) {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  for (int i = 0; i < static_cast<int>(std::size(kInfo)); ++i) {
    if (kInfo[i].name == lower) {
      *out = static_cast<DType>(i);
      return true;
    }
  }
  return false;
}

}  // namespace flashrt

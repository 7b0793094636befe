// libFuzzer target for the safetensors header parser. Any byte string must either yield tensors
// that lie inside the payload, do not overlap and hold exactly dtype x shape bytes, or throw
// flashrt::Error. A crash, a sanitizer report, an escaping exception of another type (a JSON one,
// say) or a broken invariant is a bug.
//
// Built as fuzz_safetensors_parse by -DFLASHRT_FUZZ=ON (see CMakeLists.txt);
// tests/fuzz_smoke_test.cpp also compiles it into the unit tests (see gguf_parse.cpp).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "formats/safetensors.h"

#include "fuzz_target.h"

extern "C" int FLASHRT_FUZZ_ENTRY(const uint8_t* data, size_t size) {
  std::map<std::string, flashrt::TensorInfo> tensors;
  std::map<std::string, std::string> meta;
  try {
    flashrt::SafetensorsFile::parse(data, size, "fuzz.safetensors", &tensors, &meta);
  } catch (const flashrt::Error&) {
    return 0;
  }
  std::vector<std::pair<size_t, size_t>> ranges;
  for (const auto& [name, t] : tensors) {
    FLASHRT_FUZZ_REQUIRE(name == t.name);
    FLASHRT_FUZZ_REQUIRE(t.data >= data);
    const auto off = static_cast<size_t>(t.data - data);
    FLASHRT_FUZZ_REQUIRE(off >= 8 && off <= size && t.bytes <= size - off);
    int64_t n = 1;
    for (int64_t d : t.shape) {
      FLASHRT_FUZZ_REQUIRE(d >= 0);
      FLASHRT_FUZZ_REQUIRE(!__builtin_mul_overflow(n, d, &n));
    }
    FLASHRT_FUZZ_REQUIRE(t.bytes == flashrt::dtype_bytes(t.dtype, n));
    if (t.bytes > 0) ranges.emplace_back(off, off + t.bytes);
  }
  // Non-empty ranges must be disjoint: compare each with the furthest end seen so far.
  std::sort(ranges.begin(), ranges.end());
  size_t end = 0;
  for (const auto& [b, e] : ranges) {
    FLASHRT_FUZZ_REQUIRE(b >= end);
    end = e;
  }
  return 0;
}

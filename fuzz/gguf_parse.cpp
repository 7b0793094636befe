// libFuzzer target for the GGUF reader. Any byte string must either parse into a file whose tensors
// all lie inside the input with sizes that match dtype x shape, or throw flashrt::Error. A crash, a
// sanitizer report, an escaping exception of another type or a broken invariant is a bug.
//
// Built as fuzz_gguf_parse by -DFLASHRT_FUZZ=ON (see CMakeLists.txt). tests/fuzz_smoke_test.cpp
// also compiles this file into the unit tests, renaming the entry point through FLASHRT_FUZZ_ENTRY
// and turning failed invariants into exceptions through FLASHRT_FUZZ_REQUIRE.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/error.h"
#include "formats/gguf.h"

#include "fuzz_target.h"

extern "C" int FLASHRT_FUZZ_ENTRY(const uint8_t* data, size_t size) {
  std::unique_ptr<flashrt::GGUFFile> g;
  try {
    g = flashrt::GGUFFile::parse(data, size, "fuzz.gguf");
  } catch (const flashrt::Error&) {
    return 0;
  }
  const size_t alignment = g->alignment();
  FLASHRT_FUZZ_REQUIRE(alignment > 0 && (alignment & (alignment - 1)) == 0);
  for (const auto& t : g->tensors()) {
    FLASHRT_FUZZ_REQUIRE(t.data >= data);
    const auto off = static_cast<size_t>(t.data - data);
    FLASHRT_FUZZ_REQUIRE(off <= size && t.bytes <= size - off);
    FLASHRT_FUZZ_REQUIRE(off % alignment == 0);
    FLASHRT_FUZZ_REQUIRE(!t.shape.empty() && t.shape.size() <= 4);
    // The element count must not overflow: models multiply shapes without further checks.
    int64_t n = 1;
    for (int64_t d : t.shape) {
      FLASHRT_FUZZ_REQUIRE(d > 0);
      FLASHRT_FUZZ_REQUIRE(!__builtin_mul_overflow(n, d, &n));
    }
    const auto& info = flashrt::dtype_info(t.dtype);
    FLASHRT_FUZZ_REQUIRE(t.shape.back() % info.block_elems == 0);
    FLASHRT_FUZZ_REQUIRE(t.bytes == flashrt::dtype_bytes(t.dtype, n));
    FLASHRT_FUZZ_REQUIRE(g->find(t.name) == &t);
  }
  // The metadata accessors report type mismatches as errors too.
  for (const auto& [key, value] : g->metadata()) {
    FLASHRT_FUZZ_REQUIRE(g->get_meta(key) == &value);
    (void)value.to_display();
    try {
      (void)g->get_int(key);
    } catch (const flashrt::Error&) {
    }
    try {
      (void)g->get_string(key);
    } catch (const flashrt::Error&) {
    }
    if (value.is_array()) {
      try {
        (void)value.as_double_array();
      } catch (const flashrt::Error&) {
      }
    }
  }
  return 0;
}

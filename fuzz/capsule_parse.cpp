// libFuzzer target for the capsule file reader. Any byte string must either parse into a host
// capsule whose regions tile its payload exactly, with positional regions holding `pos` rows and
// every region's bytes matching dtype x shape, or throw flashrt::Error. A crash, a sanitizer
// report, an escaping exception of another type or a broken invariant is a bug.
//
// Built as fuzz_capsule_parse by -DFLASHRT_FUZZ=ON (see CMakeLists.txt); tests/fuzz_smoke_test.cpp
// compiles it into the unit tests the same way as the other targets. The file's checksums reject
// almost every random mutation early; the smoke test also re-seals the header checksum of its
// mutants so the manifest checks behind it are reached.
#include <cstddef>
#include <cstdint>
#include <string>

#include "capsule/capsule_file.h"
#include "core/error.h"

#include "fuzz_target.h"

extern "C" int FLASHRT_FUZZ_ENTRY(const uint8_t* data, size_t size) {
  flashrt::Capsule c;
  try {
    c = flashrt::parse_capsule_bytes(data, size, "fuzz.cap");
  } catch (const flashrt::Error&) {
    return 0;
  }
  FLASHRT_FUZZ_REQUIRE(c.pos >= 0);
  FLASHRT_FUZZ_REQUIRE(c.tier == flashrt::Tier::kHost);
  uint64_t offset = 0;
  for (const auto& e : c.entries) {
    FLASHRT_FUZZ_REQUIRE(e.offset == offset);  // regions tile the payload in order
    int64_t elems = 1;
    for (int64_t d : e.shape) elems *= d;
    FLASHRT_FUZZ_REQUIRE(e.bytes == flashrt::dtype_bytes(e.dtype, elems));
    // A positional region holds a row per token, or one fewer when it lags (an MTP layer's KV).
    if (e.kind == flashrt::RegionKind::kPositional)
      FLASHRT_FUZZ_REQUIRE(!e.shape.empty() && e.shape[0] <= c.pos && e.shape[0] >= c.pos - 1);
    offset += e.bytes;
  }
  FLASHRT_FUZZ_REQUIRE(offset == c.payload_bytes());
  FLASHRT_FUZZ_REQUIRE(offset == 0 || c.data != nullptr);
  return 0;
}

// The entry point and invariant check shared by the fuzz targets in this folder: libFuzzer's
// LLVMFuzzerTestOneInput and a trap on a broken invariant by default. tests/fuzz_smoke_test.cpp
// defines both before including a target, to compile it into the unit tests under another name
// with invariants that throw. No include guard: the smoke test includes several targets, each
// with its own entry name.
#ifndef FLASHRT_FUZZ_ENTRY
#define FLASHRT_FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif
#ifndef FLASHRT_FUZZ_REQUIRE
#define FLASHRT_FUZZ_REQUIRE(cond) \
  do {                             \
    if (!(cond)) __builtin_trap(); \
  } while (0)
#endif

#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/*.cpp, clang with ASan/UBSan, tree build-fuzz) and runs each
# for a bounded time, its corpus seeded from the test fixtures: fuzz/corpus/TARGET (requests,
# JSON, tokenizer inputs) plus the seeds tests/fuzz_smoke_test.cpp builds in code (GGUF,
# safetensors and capsule files; it writes them when FLASHRT_FUZZ_CORPUS is set). A crash, a
# sanitizer report, a broken invariant or a hang fails the run; libFuzzer leaves the input that did
# it in build-fuzz/artifacts/TARGET/ (reproduce: ./build-fuzz/fuzz_TARGET FILE).
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]      (default 60 s, every target; `make fuzz`)
# Needs a normal build in $BUILD (default build/) for the seed export: `make build` first.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${1:-60}
shift || true
BUILD=${BUILD:-build}
FUZZ_BUILD=${FUZZ_BUILD:-build-fuzz}
JOBS=${JOBS:-$(nproc)}

# clang and its sanitizer/libFuzzer runtimes (Debian 12: clang-14, libclang-rt-14-dev).
if ! command -v clang++ >/dev/null 2>&1 || ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  echo "installing clang and libclang-rt-14-dev"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq clang libclang-rt-14-dev
fi

GEN=""; command -v ninja >/dev/null 2>&1 && GEN="-G Ninja"
if [ ! -f "$FUZZ_BUILD/CMakeCache.txt" ]; then
  # shellcheck disable=SC2086
  CC=clang CXX=clang++ cmake -S . -B "$FUZZ_BUILD" $GEN -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DFLASHRT_FUZZ=ON -DFLASHRT_CUDA=OFF
fi
cmake --build "$FUZZ_BUILD" -j "$JOBS" --target fuzzers

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in fuzz/*.cpp; do targets+=("$(basename "$f" .cpp)"); done
fi

# Seeds: the committed ones, then those the smoke test builds.
seeds="$FUZZ_BUILD/seeds"
rm -rf "$seeds" && mkdir -p "$seeds"
[ -x "$BUILD/flashrt_tests" ] || { echo "fuzz/run.sh: $BUILD/flashrt_tests is missing: run 'make build' first" >&2; exit 2; }
FLASHRT_FUZZ_CORPUS="$PWD/$seeds" "$BUILD/flashrt_tests" \
  --gtest_filter='FuzzSmoke.GGUFParse:FuzzSmoke.SafetensorsParse:FuzzSmoke.CapsuleParse' >/dev/null

failed=()
for t in "${targets[@]}"; do
  corpus="$FUZZ_BUILD/corpus/$t"  # grows across local runs; CI starts from the seeds each time
  mkdir -p "$corpus" "$FUZZ_BUILD/artifacts/$t"
  dirs=("$corpus")
  [ -d "fuzz/corpus/$t" ] && dirs+=("fuzz/corpus/$t")
  [ -d "$seeds/$t" ] && dirs+=("$seeds/$t")
  echo "== fuzz_$t: ${SECONDS_PER_TARGET} s, seeds from ${dirs[*]:1}"
  # -timeout: a single input running past 30 s is a hang. -rss_limit_mb: a leak or a blow-up.
  if ! "$FUZZ_BUILD/fuzz_$t" -max_total_time="$SECONDS_PER_TARGET" -timeout=30 \
      -rss_limit_mb=4096 -max_len=65536 -print_final_stats=1 \
      -artifact_prefix="$FUZZ_BUILD/artifacts/$t/" "${dirs[@]}" 2>"$FUZZ_BUILD/fuzz_$t.log"; then
    failed+=("$t")
    tail -60 "$FUZZ_BUILD/fuzz_$t.log"
  fi
  grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb|cov: " "$FUZZ_BUILD/fuzz_$t.log" | tail -3
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz/run.sh: FAILED: ${failed[*]} (inputs in $FUZZ_BUILD/artifacts/)" >&2
  exit 1
fi
echo "fuzz/run.sh: ${#targets[@]} targets, ${SECONDS_PER_TARGET} s each, no failures"

#!/usr/bin/env bash
# Builds the CUDA backend and runs its tests and per-op timings on a machine with a GPU. Run from
# the repository root:
#   FLASHRT_SHARED=DIR tests/gpu/run_on_device.sh      (DIR: the fixtures, default ../shared)
#   SANITIZE=1 ...  also runs compute-sanitizer (memcheck on the op tests, racecheck on the
#                   shared-memory kernels); a few minutes more.
# Full logs go to $OUT (default ./gpu-out); failures, the test summary and the timings are printed.
set -uo pipefail
OUT=${OUT:-$PWD/gpu-out}
BUILD=${BUILD:-build-gpu}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv \
  | tee "$OUT/gpu.txt"

if ! cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >"$OUT/configure.log" 2>&1; then
  tail -30 "$OUT/configure.log"; exit 1
fi
grep "CUDA backend" "$OUT/configure.log"
if ! cmake --build "$BUILD" -j"$(nproc)" --target flashrt_gpu_tests bench_cuda_ops \
    >"$OUT/build.log" 2>&1; then
  grep -E "error|FAILED" "$OUT/build.log" | head -40; exit 1
fi

timeout 420 "./$BUILD/flashrt_gpu_tests" --gtest_output=xml:"$OUT/gpu_tests.xml" \
  >"$OUT/gpu_tests.log" 2>&1
rc=$?
if [ "${SANITIZE:-0}" = 1 ] && command -v compute-sanitizer >/dev/null; then
  timeout 240 compute-sanitizer --tool memcheck --error-exitcode 9 "./$BUILD/flashrt_gpu_tests" \
    --gtest_filter='CudaLinear.*:CudaElementwise.*:CudaAttention.*:CudaGdn.BoundariesThatAreExact' \
    >"$OUT/memcheck.log" 2>&1
  echo "memcheck exit $? (0: clean; 9: errors, see memcheck.log; 124: timed out)"
  timeout 240 compute-sanitizer --tool racecheck --error-exitcode 9 "./$BUILD/flashrt_gpu_tests" \
    --gtest_filter='CudaGdn.BoundariesThatAreExact:CudaAttention.*:CudaElementwise.Rms*' \
    >"$OUT/racecheck.log" 2>&1
  echo "racecheck exit $? (0: clean; 9: hazards, see racecheck.log; 124: timed out)"
fi
timeout 180 "./$BUILD/bench_cuda_ops" >"$OUT/ops.log" 2>&1

echo "---- failures (full log: $OUT/gpu_tests.log) ----"
grep -E -B2 -A6 "Failure$" "$OUT/gpu_tests.log" | head -120
echo "---- tests ----"
grep -E "^\[  (PASSED|FAILED|SKIPPED)  \]|tests ran" "$OUT/gpu_tests.log" | head -40
echo "---- per-op timings ----"
cat "$OUT/ops.log"
exit $rc

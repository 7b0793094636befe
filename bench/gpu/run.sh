#!/usr/bin/env bash
# The device check of the CUDA backend, run on the GPU machine from the repository root with
# .gpubundle/ and .devshared/ carried (bench/gpu/bundle.sh makes them): the GPU tests, then for the
# Qwen3.5-0.8B and Qwen3-0.6B shapes (random weights made by transformers, so both engines run the
# same ones) flashrt's decode / prefill / device-tier capsules / TTFT next to transformers. Full
# logs under $OUT; a short table last. Budgeted for well under 8 minutes on an H100/H200.
set -uo pipefail
ROOT=$PWD
OUT=${OUT:-$ROOT/gpu-out}
mkdir -p "$OUT"
BIN=$ROOT/.gpubundle/bin
CUBLAS=$(python3 -c "import nvidia.cublas, os; print(os.path.join(os.path.dirname(nvidia.cublas.__file__), 'lib'))" 2>/dev/null)
export LD_LIBRARY_PATH=$ROOT/.gpubundle/lib:/usr/local/cuda/lib64:${CUBLAS}:${LD_LIBRARY_PATH:-}
export FLASHRT_SHARED=$ROOT/.devshared FLASHRT_SOURCE=$ROOT PYTHONUNBUFFERED=1
T0=$(date +%s)
step() { echo "[$(($(date +%s) - T0))s] $*"; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
if ldd "$BIN/flashrt" | grep "not found"; then echo "missing libraries"; exit 1; fi

step "GPU tests"
timeout 300 "$BIN/flashrt_gpu_tests" >"$OUT/gpu_tests.log" 2>&1
tests_rc=$?
grep -E -B2 -A8 "Failure$" "$OUT/gpu_tests.log" | head -60
grep -E "^\[  (PASSED|FAILED)|tests ran|^\[  FAILED  \]" "$OUT/gpu_tests.log" | head -30

IDS=$(python3 -c "import random; random.seed(5); print(','.join(str(random.randrange(100000)) for _ in range(64)))")
for spec in qwen3_5:0.8b qwen3:0.6b; do
  arch=${spec%%:*}; shape=${spec##*:}; M=/tmp/$arch-$shape
  step "model $arch $shape"
  python3 bench/gpu/make_hf_model.py --arch "$arch" --shape "$shape" -o "$M" >"$OUT/make_$arch.log" 2>&1 || tail -5 "$OUT/make_$arch.log"
  step "flashrt $arch"
  timeout 240 "$BIN/bench_device" -m "$M" -d cuda --label "$arch-$shape (random, bf16)" --out-md "$OUT/flashrt_$arch.md" \
    >"$OUT/flashrt_$arch.log" 2>&1 || tail -20 "$OUT/flashrt_$arch.log"
  timeout 60 "$BIN/flashrt" logits -d cuda -m "$M" --ids "$IDS" -o "$OUT/fr_logits_$arch.npy" >"$OUT/fr_logits_$arch.log" 2>&1 \
    || tail -5 "$OUT/fr_logits_$arch.log"
  step "transformers $arch"
  timeout 240 python3 bench/gpu/hf_baseline.py "$M" --decode 128 --prefill 2048 --logits-ids "$IDS" \
    --logits-out "$OUT/hf_logits_$arch.npy" >"$OUT/hf_$arch.md" 2>"$OUT/hf_$arch.log" || tail -20 "$OUT/hf_$arch.log"
  python3 - "$OUT/fr_logits_$arch.npy" "$OUT/hf_logits_$arch.npy" >>"$OUT/hf_$arch.md" <<'PY'
import sys, numpy as np
try:
    a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
    d = np.abs(a - b).max()
    print(f"- logits, flashrt CUDA vs transformers bf16 on 64 tokens: max |diff| {d:.4f} (logit scale {np.abs(b).max():.2f}), argmax agreement {np.mean(a.argmax(-1) == b.argmax(-1)) * 100:.1f}%")
except Exception as e:
    print(f"- logits comparison failed: {e}")
PY
done
step "done"
echo
echo "======== summary ========"
cat "$OUT/gpu.txt"
for arch in qwen3_5 qwen3; do cat "$OUT/flashrt_$arch.md" 2>/dev/null; echo; cat "$OUT/hf_$arch.md" 2>/dev/null; echo; done
grep -E "^\[  (PASSED|FAILED)" "$OUT/gpu_tests.log"
exit $tests_rc

#!/usr/bin/env bash
# GGUF interoperability with llama.cpp on the trained models, by greedy tokens:
#  1. a GGUF written by flashrt (convert, bf16 and q8_0) loads in llama.cpp and continues the sample
#     prompts like flashrt does;
#  2. a GGUF quantized by llama.cpp (llama-quantize Q8_0 / Q4_0 of that file) loads in flashrt and
#     continues them like llama.cpp does.
# Two engines with different arithmetic (llama.cpp rounds activations to bf16 for bf16 weights and to
# 8 bits for quantized ones) may part at a genuine near-tie; where they part, flashrt's own logits at
# that position give the top-2 gap, and a divergence counts as a near-tie when the gap is under 1% of
# the logit scale. Anything else is a failure.
# Runs where the llama.cpp build from node-llama-cpp's bundle exists (build_llamacpp.sh makes it).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SHARED=${FLASHRT_SHARED:-$ROOT/../shared}
BIN=$("$ROOT/bench/vs-llamacpp/build_llamacpp.sh" | tail -1)
L=$(dirname "$BIN")
FLASHRT=$ROOT/${BUILD:-build}/flashrt
WORK=${WORK:-$ROOT/.cache/interop}
N=${N:-48}
mkdir -p "$WORK"
for model in pycoder-hybrid-12m pycoder-dense-7m; do
  src=$SHARED/models/$model
  for type in bf16 q8_0; do "$FLASHRT" convert "$src" -o "$WORK/$model-flashrt-$type.gguf" --type "$type" 2>/dev/null; done
  for type in Q8_0 Q4_0; do
    "$L/llama-quantize" "$WORK/$model-flashrt-bf16.gguf" "$WORK/$model-llama-$type.gguf" "$type" >/dev/null 2>&1 \
      || echo "llama-quantize $type failed for $model"
  done
done
gcc -O2 -o "$WORK/llama_greedy" "$ROOT/bench/vs-llamacpp/llama_greedy.c" -I"$L/../../src/include" \
  -I"$L/../../src/ggml/include" -L"$L" -lllama -lggml -lggml-base -Wl,-rpath,"$L"
python3 - "$WORK/llama_greedy" "$FLASHRT" "$WORK" "$SHARED" "$N" <<'PY'
import json, struct, subprocess, sys
LLAMA, FLASHRT, WORK, SHARED, N = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])

def run(args):
    return subprocess.run(args, capture_output=True).stdout.decode("utf-8", "replace")

def last_logits(gguf, ids):
    path = f"{WORK}/interop-logits.npy"
    subprocess.run([FLASHRT, "logits", "-m", gguf, "--ids", ",".join(map(str, ids)), "-o", path], capture_output=True)
    data = open(path, "rb").read()
    hlen = struct.unpack("<H", data[8:10])[0]
    vocab = int(data[10:10 + hlen].decode().split("(")[1].split(")")[0].split(",")[1])
    return struct.unpack(f"<{vocab}f", data[-4 * vocab:])

same = ties = bad = 0
for model in ("pycoder-hybrid-12m", "pycoder-dense-7m"):
    for s in json.load(open(f"{SHARED}/models/{model}/samples.json")):
        for kind in ("flashrt-bf16", "flashrt-q8_0", "llama-Q8_0", "llama-Q4_0"):
            gguf = f"{WORK}/{model}-{kind}.gguf"
            prompt = [int(x) for x in run([FLASHRT, "tokenize", "-m", gguf, "-p", s["prompt"]]).split()]
            ids = ",".join(map(str, prompt))
            a = [int(x) for x in run([LLAMA, gguf, str(N), ids]).split()]
            b = [int(x) for x in run([FLASHRT, "run", "-m", gguf, "--ids", ids, "-n", str(N), "--temp", "0",
                                      "--print-ids", "--ignore-eos"]).split()]
            label = f"{model:20s} {kind:13s} {s['prompt'][:22]!r:28s}"
            if a == b and len(a) == N:
                same += 1
                print(f"identical  {label} {N} tokens")
                continue
            k = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), None)
            if k is None:
                bad += 1
                print(f"DIFFERENT  {label}: {len(a)} vs {len(b)} tokens")
                continue
            lg = last_logits(gguf, prompt + b[:k])
            top = sorted(lg, reverse=True)
            gap, scale = top[0] - top[1], max(abs(x) for x in lg)
            tie = gap < 0.01 * scale
            ties += tie
            bad += not tie
            print(f"{'near-tie ' if tie else 'DIFFERENT'}  {label} from token {k}: top-2 gap {gap:.4f} of logit scale "
                  f"{scale:.1f} (llama.cpp {a[k]}: {lg[a[k]]:.4f}, flashrt {b[k]}: {lg[b[k]]:.4f})")
print(f"interop: {same} identical over {N} tokens, {ties} parted at a near-tie, {bad} different")
sys.exit(1 if bad else 0)
PY

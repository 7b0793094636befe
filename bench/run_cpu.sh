#!/usr/bin/env bash
# Runs the CPU benchmarks one after another on a quiet machine and leaves their outputs in
# $OUT (default .cache/bench-out): kernels + memory bandwidth, tokenizer, TTFT (cold prefill vs
# capsule restore) on pycoder-hybrid-12m and a Qwen3.5-0.8B-shaped model, the server load test,
# the 10-minute server soak test, speculative decoding, held-out perplexity per weight type, flashrt vs llama.cpp and GGUF interoperability. docs/BENCHMARKS.md quotes them.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=$ROOT/${BUILD:-build}
OUT=${OUT:-$ROOT/.cache/bench-out}
mkdir -p "$OUT"
cmake --build "$B" --target flashrt benches >/dev/null
lscpu | sed -n 's/^Model name: *//p' > "$OUT/machine.txt"
nproc >> "$OUT/machine.txt"
"$B/bench_cpu_kernels" > "$OUT/cpu_kernels.txt" 2>&1
"$B/bench_tokenize" > "$OUT/tokenize.txt" 2>&1
M08=$ROOT/.cache/qwen3_5-0.8b-q8_0.gguf
[ -f "$M08" ] || "$B/flashrt" make-model --arch qwen3_5 --shape 0.8b --type q8_0 -o "$M08"
"$B/bench_ttft" -m "$ROOT/models/pycoder-hybrid-12m.gguf" --label pycoder-hybrid-12m \
  --out-md "$OUT/ttft_pycoder.md" --out-svg "$ROOT/docs/ttft-pycoder-cpu.svg" > "$OUT/ttft_pycoder.log" 2>&1
"$B/bench_ttft" -m "$M08" --label "Qwen3.5-0.8B shape, q8_0" \
  --out-md "$OUT/ttft_08b.md" --out-svg "$ROOT/docs/ttft-qwen3_5-0.8b-cpu.svg" > "$OUT/ttft_08b.log" 2>&1
"$B/bench_serve_load" -m "$ROOT/models/pycoder-hybrid-12m.gguf" > "$OUT/serve_load.txt" 2>&1
"$B/bench_soak" -m "$ROOT/models/pycoder-hybrid-12m.gguf" --duration 600 > "$OUT/soak.txt" 2>&1
"$B/bench_speculative" -m "$ROOT/models/pycoder-hybrid-12m.gguf" -n 128 --prompts 6 > "$OUT/speculative.txt" 2>&1
# Quantization quality: held-out perplexity of the trained models per weight type.
SHARED=${FLASHRT_SHARED:-$ROOT/../shared}
PQ=$ROOT/.cache/ppl
mkdir -p "$PQ"
{
  echo "| model | type | file MB | perplexity | vs bf16 |"
  echo "|---|---|---:|---:|---:|"
  for model in pycoder-hybrid-12m pycoder-dense-7m; do
    base=""
    for type in bf16 q8_0 q6_k q4_k q4_0; do
      f=$PQ/$model-$type.gguf
      "$B/flashrt" convert "$SHARED/models/$model" -o "$f" --type "$type" 2>/dev/null
      ppl=$("$B/flashrt" perplexity -m "$f" -f "$ROOT/tests/data/heldout.py" 2>/dev/null | sed -n 's/.*perplexity[^0-9]*\([0-9.]*\).*/\1/p' | head -1)
      [ -z "$base" ] && base=$ppl
      echo "| $model | $type | $(( $(stat -c %s "$f") / 1000000 )) | $ppl | $(python3 -c "print(f'{($ppl/$base-1)*100:+.2f}%')") |"
    done
  done
} > "$OUT/perplexity.md" 2>&1
BUILD=${BUILD:-build} "$ROOT/bench/vs-llamacpp/run.sh" > "$OUT/vs_llamacpp.txt" 2>&1
BUILD=${BUILD:-build} "$ROOT/bench/vs-llamacpp/interop.sh" > "$OUT/interop.txt" 2>&1
BUILD=${BUILD:-build} "$ROOT/bench/vs-llamacpp/speculative.sh" > "$OUT/speculative_vs_llamacpp.txt" 2>&1
echo "done: $OUT"

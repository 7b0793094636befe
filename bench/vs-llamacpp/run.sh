#!/usr/bin/env bash
# flashrt vs llama.cpp on the same GGUF files, 2 threads: prompt processing of 512 tokens, generation
# of 128 tokens, and generation of 128 tokens after a 2048-token context. Median of REPS runs each,
# flashrt and llama.cpp interleaved run by run; llama.cpp with flash attention off and on (its better
# setting per row is the one compared). Both engines keep the KV cache in f16 (llama.cpp's default;
# flashrt --kv-type f16). Prints one table with the ratio per row, and flashrt's decode bandwidth
# (GGUF bytes per token x tokens/s) next to the machine's measured read bandwidth, and writes it to
# docs/bench-vs-llamacpp.md.
#
#   bench/vs-llamacpp/run.sh [REPS=5] [TYPES="f16 q8_0 q4_0 q4_k"] [MODELS="qwen3:0.6b qwen3_5:0.8b"]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
REPS=${REPS:-5}
TYPES=${TYPES:-"f16 q8_0 q4_0 q4_k"}
MODELS=${MODELS:-"qwen3:0.6b qwen3_5:0.8b"}
THREADS=${THREADS:-2}
WORK=${WORK:-$ROOT/.cache/vs-llamacpp}
TOKENIZER=${TOKENIZER:-$ROOT/../shared/reference/qwen3-tokenizer}
mkdir -p "$WORK"

LLAMA_BENCH=$("$ROOT/bench/vs-llamacpp/build_llamacpp.sh" | tail -1)
B=$ROOT/${BUILD:-build}
cmake --build "$B" --target flashrt bench_pp_tg bench_cpu_kernels >/dev/null
FLASHRT=$B/flashrt
PPTG=$B/bench_pp_tg
RAW=$WORK/raw.jsonl
: > "$RAW"

for spec in $MODELS; do
  arch=${spec%%:*}; shape=${spec##*:}
  for type in $TYPES; do
    gguf=$WORK/$arch-$shape-$type.gguf
    # The same file for both engines, with a real tokenizer padded to the vocabulary (llama.cpp
    # needs one to load the file).
    [ -f "$gguf" ] || "$FLASHRT" make-model --arch "$arch" --shape "$shape" --type "$type" --tokenizer "$TOKENIZER" -o "$gguf" >&2
    for rep in $(seq "$REPS"); do
      for engine in flashrt llama-fa0 llama-fa1; do
        for depth in 0 2048; do
          if [ "$engine" = flashrt ]; then
            if [ "$depth" = 0 ]; then out=$("$PPTG" -m "$gguf" -t "$THREADS" -p 512 -n 128 --kv-type f16); else out=$("$PPTG" -m "$gguf" -t "$THREADS" -p 0 -n 128 -d 2048 --kv-type f16); fi
          else
            fa=${engine##*fa}
            if [ "$depth" = 0 ]; then args="-p 512 -n 128"; else args="-p 0 -n 128 -d 2048"; fi
            out=$("$LLAMA_BENCH" -m "$gguf" -t "$THREADS" $args -fa "$fa" -r 1 -o jsonl 2>/dev/null)
          fi
          python3 - "$arch" "$shape" "$type" "$engine" "$depth" "$rep" <<PY >> "$RAW"
import json, sys
arch, shape, type_, engine, depth, rep = sys.argv[1:]
for line in """$out""".splitlines():
    line = line.strip()
    if not line.startswith("{"): continue
    j = json.loads(line)
    if "test" in j: test, tps = j["test"], j["avg"]                       # flashrt
    else:
        test = ("pp%d" % j["n_prompt"]) if j["n_prompt"] else ("tg%d" % j["n_gen"])
        tps = j["avg_ts"]                                                  # llama-bench
    print(json.dumps(dict(arch=arch, shape=shape, type=type_, engine=engine, depth=int(depth), rep=int(rep), test=test, tps=tps)))
PY
        done
      done
    done
  done
done

BW=$("$B/bench_cpu_kernels" --bandwidth --threads "$THREADS" 2>/dev/null | sed -n "s/.*, $THREADS threads\{0,1\}: \([0-9.]*\) GB\/s.*/\1/p" | tail -1)
python3 - "$RAW" "$ROOT/docs/bench-vs-llamacpp.md" "$THREADS" "$REPS" "$WORK" "${BW:-nan}" <<'PY'
import json, os, statistics, sys, platform, subprocess
raw, out, threads, reps, work, bw = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], float(sys.argv[6])
rows = [json.loads(l) for l in open(raw)]
cpu = subprocess.run(["sh", "-c", "lscpu | sed -n 's/^Model name: *//p'"], capture_output=True, text=True).stdout.strip()
def med(**k):
    v = [r["tps"] for r in rows if all(r[a] == b for a, b in k.items())]
    return statistics.median(v) if v else float("nan")
lines = [f"flashrt vs llama.cpp (v0.4.0 from node-llama-cpp 3.21.1, llama-bench built with GGML_NATIVE), {cpu}, {threads} threads, median of {reps} interleaved runs; tokens/s; llama.cpp's better flash-attention setting per cell; f16 KV cache in both. Decode bandwidth = GGUF bytes x tokens/s (tg128 at depth 0); measured read bandwidth of the machine: {bw:.1f} GB/s.", "",
         "| model | type | test | flashrt | llama.cpp | flashrt / llama.cpp | flashrt decode GB/s |", "|---|---|---|---:|---:|---:|---:|"]
seen = []
for r in rows:
    key = (r["arch"], r["shape"], r["type"])
    if key not in seen: seen.append(key)
for arch, shape, type_ in seen:
    for test, depth, label in (("pp512", 0, "pp512"), ("tg128", 0, "tg128"), ("tg128", 2048, "tg128 @ 2048")):
        f = med(arch=arch, shape=shape, type=type_, engine="flashrt", test=test, depth=depth)
        l = max(med(arch=arch, shape=shape, type=type_, engine=e, test=test, depth=depth) for e in ("llama-fa0", "llama-fa1"))
        gb = ""
        if label == "tg128":
            size = os.path.getsize(os.path.join(work, f"{arch}-{shape}-{type_}.gguf")) / 1e9
            gb = f"{size * f:.1f} ({size * f / bw:.0%})" if bw == bw else f"{size * f:.1f}"
        lines.append(f"| {arch} {shape} | {type_} | {label} | {f:.1f} | {l:.1f} | **{f / l:.2f}x** | {gb} |")
text = "\n".join(lines) + "\n"
open(out, "w").write(text)
print(text)
PY

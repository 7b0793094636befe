#!/usr/bin/env bash
# flashrt's bench_batched vs llama.cpp's llama-batched-bench on the same GGUF files: B = 1, 2, 4, 8,
# 16 sequences, each prefilling a 128-token prompt (not shared), then all B generating 128 tokens
# together, one forward step per token. Same threads, f16 KV cache in both (llama.cpp's default),
# llama.cpp with its default flash-attention choice (`-fa auto`; LLAMA_FA="off on" runs both and
# compares its better one per cell). Median of REPS runs, the
# engines interleaved run by run. Prints one table (aggregate prompt and decode tokens/s, the
# ratio, per-sequence inter-token latency, decode bandwidth = GGUF bytes x decode steps/s) and
# writes it to docs/bench-batched.md.
#
#   bench/vs-llamacpp/batched.sh [REPS=3] [TYPES="q8_0 q4_k"] [MODELS="qwen3:0.6b qwen3_5:0.8b"]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
REPS=${REPS:-3}
TYPES=${TYPES:-"q8_0 q4_k"}
MODELS=${MODELS:-"qwen3:0.6b qwen3_5:0.8b"}
THREADS=${THREADS:-2}
LLAMA_FA=${LLAMA_FA:-auto}
NPL=${NPL:-1,2,4,8,16}
NPP=${NPP:-128}
NTG=${NTG:-128}
WORK=${WORK:-$ROOT/.cache/vs-llamacpp}
TOKENIZER=${TOKENIZER:-$ROOT/../shared/reference/qwen3-tokenizer}
mkdir -p "$WORK"

LLAMA_BIN=$(dirname "$("$ROOT/bench/vs-llamacpp/build_llamacpp.sh" | tail -1)")
B=$ROOT/${BUILD:-build}
cmake --build "$B" --target flashrt bench_batched bench_cpu_kernels >/dev/null
RAW=$WORK/batched.jsonl
: > "$RAW"
MAXB=${NPL##*,}
CTX=$(( MAXB * (NPP + NTG) + 64 ))

for spec in $MODELS; do
  arch=${spec%%:*}; shape=${spec##*:}
  for type in $TYPES; do
    gguf=$WORK/$arch-$shape-$type.gguf
    [ -f "$gguf" ] || "$B/flashrt" make-model --arch "$arch" --shape "$shape" --type "$type" --tokenizer "$TOKENIZER" -o "$gguf" >&2
    for rep in $(seq "$REPS"); do
      for engine in flashrt $(for fa in $LLAMA_FA; do echo "llama-fa$fa"; done); do
        echo "# $arch $shape $type rep $rep $engine" >&2
        if [ "$engine" = flashrt ]; then
          out=$("$B/bench_batched" -m "$gguf" -t "$THREADS" --npp "$NPP" --ntg "$NTG" --npl "$NPL" --kv-type f16)
        else
          out=$("$LLAMA_BIN/llama-batched-bench" -m "$gguf" -t "$THREADS" -tb "$THREADS" -c "$CTX" -b 2048 -ub 512 \
                -npp "$NPP" -ntg "$NTG" -npl "$NPL" -fa "${engine#llama-fa}" --output-format jsonl 2>/dev/null)
        fi
        python3 - "$arch" "$shape" "$type" "$engine" "$rep" <<PY >> "$RAW"
import json, sys
arch, shape, type_, engine, rep = sys.argv[1:]
for line in """$out""".splitlines():
    line = line.strip()
    if not line.startswith("{"): continue
    j = json.loads(line)
    if "B" in j: b, s_pp, s_tg, t_tg, tg = j["B"], j["s_pp"], j["s_tg"], j["t_tg"], j["tg"]  # flashrt
    else: b, s_pp, s_tg, t_tg, tg = j["pl"], j["speed_pp"], j["speed_tg"], j["t_tg"], j["tg"]  # llama.cpp
    print(json.dumps(dict(arch=arch, shape=shape, type=type_, engine=engine, rep=int(rep), B=b,
                          s_pp=s_pp, s_tg=s_tg, itl_ms=t_tg / tg * 1e3)))
PY
      done
    done
  done
done

BW=$("$B/bench_cpu_kernels" --bandwidth --threads "$THREADS" 2>/dev/null | sed -n "s/.*, $THREADS threads\{0,1\}: \([0-9.]*\) GB\/s.*/\1/p" | tail -1)
python3 - "$RAW" "$ROOT/docs/bench-batched.md" "$THREADS" "$REPS" "$WORK" "${BW:-nan}" "$NPP" "$NTG" "$LLAMA_FA" <<'PY'
import json, os, statistics, sys, subprocess
raw, out, threads, reps, work, bw, npp, ntg, fa = sys.argv[1:10]
fa = "auto" if fa == "auto" else f"{fa.replace(' ', ' and ')}, the better per cell"
bw = float(bw)
rows = [json.loads(l) for l in open(raw)]
cpu = subprocess.run(["sh", "-c", "lscpu | sed -n 's/^Model name: *//p'"], capture_output=True, text=True).stdout.strip()
def med(field, **k):
    v = [r[field] for r in rows if all(r[a] == b for a, b in k.items())]
    return statistics.median(v) if v else float("nan")
lines = [f"flashrt `bench_batched` vs llama.cpp `llama-batched-bench` (v0.4.0 from node-llama-cpp 3.21.1, GGML_NATIVE, no AMX), {cpu}, {threads} threads, B sequences of {npp} prompt + {ntg} generated tokens each, median of {reps} interleaved runs; aggregate tokens/s over all B sequences; llama.cpp flash attention {fa}; f16 KV cache in both. ITL = one decode step = every sequence's inter-token latency. Decode GB/s = GGUF bytes x decode steps/s (weights read once per step); measured read bandwidth: {bw:.1f} GB/s.", "",
         "| model | type | B | prefill flashrt | prefill llama.cpp | ratio | decode flashrt | decode llama.cpp | ratio | decode vs B=1 | ITL ms flashrt / llama.cpp | flashrt decode GB/s |",
         "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
seen = []
for r in rows:
    key = (r["arch"], r["shape"], r["type"])
    if key not in seen: seen.append(key)
for arch, shape, type_ in seen:
    size = os.path.getsize(os.path.join(work, f"{arch}-{shape}-{type_}.gguf")) / 1e9
    bs = sorted({r["B"] for r in rows if (r["arch"], r["shape"], r["type"]) == (arch, shape, type_)})
    base = med("s_tg", arch=arch, shape=shape, type=type_, engine="flashrt", B=bs[0])
    for b in bs:
        k = dict(arch=arch, shape=shape, type=type_, B=b)
        fp, ft = med("s_pp", engine="flashrt", **k), med("s_tg", engine="flashrt", **k)
        llama = sorted({r["engine"] for r in rows if r["engine"] != "flashrt"})
        lp = max(med("s_pp", engine=e, **k) for e in llama)
        lt = max(med("s_tg", engine=e, **k) for e in llama)
        fi = med("itl_ms", engine="flashrt", **k)
        li = min(med("itl_ms", engine=e, **k) for e in llama)
        gb = size * ft / b
        gbs = f"{gb:.1f} ({gb / bw:.0%})" if bw == bw else f"{gb:.1f}"
        lines.append(f"| {arch} {shape} | {type_} | {b} | {fp:.1f} | {lp:.1f} | **{fp / lp:.2f}x** | {ft:.1f} | {lt:.1f} | **{ft / lt:.2f}x** | {ft / base:.2f}x | {fi:.1f} / {li:.1f} | {gbs} |")
text = "\n".join(lines) + "\n"
open(out, "w").write(text)
print(text)
PY

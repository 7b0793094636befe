#!/usr/bin/env bash
# Speculative decoding, flashrt vs llama.cpp, in one run on the same GGUF files that flashrt's
# convert writes: target pycoder-hybrid-12m (bf16), draft model pycoder-dense-7m (bf16), and the
# target's *-mtp twin (same base weights plus the trained MTP head). The held-out prompts are the
# ones bench_speculative uses (written out by --dump-prompts); 128 greedy tokens after each, 2
# threads.
#   flashrt:   bench_speculative on those files (plain, n-gram, draft model, MTP; each checked
#              token-identical to plain)
#   llama.cpp: llama-speculative-simple --spec-type ngram-simple | draft-simple -md DRAFT |
#              draft-mtp (on the *-mtp file), and llama-bench tg128 as its plain decode speed
#              (--spec-type none does not run in this build); its own defaults otherwise
#              (--spec-draft-p-min etc.), --spec-draft-n-max K.
# Prints flashrt's table, then llama.cpp's tokens/s, ratio to its plain decode and acceptance per
# mode over all prompts.
#   bench/vs-llamacpp/speculative.sh [N=128] [K=8]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
N=${N:-128}
K=${K:-8}
THREADS=${THREADS:-2}
SHARED=${FLASHRT_SHARED:-$ROOT/../shared}
WORK=${WORK:-$ROOT/.cache/spec-vs-llamacpp}
mkdir -p "$WORK/prompts"
LLAMA_BENCH=$("$ROOT/bench/vs-llamacpp/build_llamacpp.sh" | tail -1)
SPEC=$(dirname "$LLAMA_BENCH")/llama-speculative-simple
B=$ROOT/${BUILD:-build}
cmake --build "$B" --target flashrt bench_speculative >/dev/null
TARGET=$WORK/pycoder-hybrid-12m-bf16.gguf
DRAFT=$WORK/pycoder-dense-7m-bf16.gguf
MTP=$WORK/pycoder-hybrid-12m-mtp-bf16.gguf
for pair in "$TARGET:pycoder-hybrid-12m" "$DRAFT:pycoder-dense-7m" "$MTP:pycoder-hybrid-12m-mtp"; do
  f=${pair%%:*}
  [ -f "$f" ] || "$B/flashrt" convert "$SHARED/models/${pair##*:}" -o "$f" --type bf16 >/dev/null
done
cd "$ROOT"
"$B/bench_speculative" -m "$TARGET" --dump-prompts "$WORK/prompts" >/dev/null

echo "== flashrt (bench_speculative, $N tokens per prompt, k <= $K adaptive, $THREADS threads)"
"$B/bench_speculative" -m "$TARGET" --draft "$DRAFT" --mtp-model "$MTP" -n "$N" \
  --draft-max "$K" -t "$THREADS" | sed -n '/-- all prompts/,$p'

echo
echo "== llama.cpp (llama-speculative-simple, $N tokens per prompt, --spec-draft-n-max $K, $THREADS threads)"
plain=$("$LLAMA_BENCH" -m "$TARGET" -p 0 -n "$N" -t "$THREADS" -r 3 -o csv 2>/dev/null |
  awk -F, 'NR > 1 { gsub(/"/, "", $0); print $(NF-1) }' | tail -1)
printf "%-13s %9s %8s %7s\n" mode tok/s "vs plain" accept
printf "%-13s %9.1f %7.2fx %7s\n" plain "$plain" 1 "-"
for mode in ngram-simple draft-simple draft-mtp; do
  model=$TARGET; extra=()
  [ "$mode" = draft-simple ] && extra=(-md "$DRAFT")
  [ "$mode" = draft-mtp ] && model=$MTP
  toks=0; secs=0; drafted=0; accepted=0
  for p in "$WORK"/prompts/*.txt; do
    out=$("$SPEC" -m "$model" "${extra[@]}" --spec-type "$mode" -f "$p" -n "$N" --temp 0 \
      -t "$THREADS" --spec-draft-n-max "$K" 2>&1)
    read -r t s < <(echo "$out" | sed -n 's/.*decoded *\([0-9]*\) tokens in *\([0-9.]*\) seconds.*/\1 \2/p')
    d=$(echo "$out" | sed -n 's/.*n_drafted = \([0-9]*\).*/\1/p')
    a=$(echo "$out" | sed -n 's/.*n_accept  = \([0-9]*\).*/\1/p')
    toks=$((toks + t)); drafted=$((drafted + d)); accepted=$((accepted + a))
    secs=$(python3 -c "print($secs + $s)")
  done
  python3 -c "
tps = $toks / $secs
acc = 100 * $accepted / max($drafted, 1)
print(f'{\"$mode\":<13} {tps:9.1f} {tps / $plain:7.2f}x {acc:6.1f}%')"
done

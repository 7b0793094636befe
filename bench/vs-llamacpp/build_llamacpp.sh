#!/usr/bin/env bash
# Builds llama.cpp's llama-bench, llama-batched-bench and llama-speculative-simple (speculative
# decoding: --spec-type draft-simple|draft-mtp|ngram-*; CPU only, -DGGML_NATIVE=ON) from the
# source bundle that the npm package node-llama-cpp@3.21.1 ships (llama.cpp v0.4.0 as a git
# bundle), into .cache/llamacpp/. Idempotent: does nothing when the binaries exist. Needs npm (the
# npm registry) and cmake. Prints llama-bench's path last.
# AMX is left out: the tiles work on these machines once a process asks Linux for them, but ggml's
# AMX build dies with SIGILL on `tileloadd` in tinygemm_kernel_amx<block_q8_0,...> on an OpenMP
# worker thread whose tile configuration was never loaded (tile configuration is per thread: a
# ggml bug), so a native build would crash on Q8_0/Q4_0. With GGML_NATIVE the compiler's
# -march=native turns them on, so they are switched off after it; this is llama.cpp's fastest
# working build here.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${LLAMACPP_CACHE:-$ROOT/.cache/llamacpp}
BIN=$CACHE/build/bin/llama-bench
if [ -x "$BIN" ] && [ -x "$CACHE/build/bin/llama-batched-bench" ] &&
  [ -x "$CACHE/build/bin/llama-speculative-simple" ]; then echo "$BIN"; exit 0; fi
mkdir -p "$CACHE/npm"
if [ ! -f "$CACHE/npm/node_modules/node-llama-cpp/llama/gitRelease.bundle" ]; then
  (cd "$CACHE/npm" && [ -f package.json ] || npm init -y >/dev/null) >&2
  (cd "$CACHE/npm" && npm install --no-audit --no-fund --ignore-scripts node-llama-cpp@3.21.1) >&2
fi
if [ ! -d "$CACHE/src/.git" ]; then
  git clone -q "$CACHE/npm/node_modules/node-llama-cpp/llama/gitRelease.bundle" "$CACHE/src" >&2
fi
cmake -S "$CACHE/src" -B "$CACHE/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DGGML_CUDA=OFF \
  -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF \
  -DCMAKE_C_FLAGS="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16" -DCMAKE_CXX_FLAGS="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16" \
  -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=ON -DLLAMA_BUILD_SERVER=OFF >&2
cmake --build "$CACHE/build" --target llama-bench llama-batched-bench llama-simple llama-quantize \
  llama-speculative-simple -j "$(nproc)" >&2
echo "$BIN"

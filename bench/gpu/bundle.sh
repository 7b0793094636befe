#!/usr/bin/env bash
# Prepares the GPU device check on this machine: the GPU machine has CUDA and PyTorch but none of
# flashrt's Debian libraries, so flashrt is built here (nvcc, Hopper sm_90a) and carried there.
#   .gpubundle/bin  flashrt, flashrt_gpu_tests, bench_device (stripped)
#   .gpubundle/lib  the shared libraries they need beyond glibc, libstdc++ and CUDA
#   .devshared/     the fixtures the GPU tests read (a subset of ../shared)
# Then: device run with carry [".gpubundle", ".devshared"] and command "bench/gpu/run.sh".
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
B=${BUILD:-build-gpu-bundle}
cmake -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DFLASHRT_CUDA_GENCODE="-gencode=arch=compute_90a,code=sm_90a" >/dev/null
cmake --build "$B" -j "$(nproc)" --target flashrt flashrt_gpu_tests bench_device
rm -rf .gpubundle && mkdir -p .gpubundle/bin .gpubundle/lib
cp "$B/flashrt" "$B/flashrt_gpu_tests" "$B/bench_device" .gpubundle/bin/
strip .gpubundle/bin/*
for lib in $(ldd .gpubundle/bin/* | awk '/=>/ {print $3}' | sort -u); do
  case "$(basename "$lib")" in
    libc.so*|libm.so*|libstdc++.so*|libgcc_s.so*|ld-linux*|libpthread.so*|libdl.so*|librt.so*|libcublas*|libcudart*|libcuda.so*) ;;
    *) cp -L "$lib" .gpubundle/lib/ ;;
  esac
done
S=${FLASHRT_SHARED:-$ROOT/../shared}
rm -rf .devshared && mkdir -p .devshared/reference .devshared/models/pycoder-hybrid-12m
cp -r "$S"/reference/{qwen3,qwen3-tied,qwen35} .devshared/reference/
# The hybrid's weights travel as models/pycoder-hybrid-12m.gguf (tracked); its reference does here.
cp "$S"/models/pycoder-hybrid-12m/{config.json,reference.safetensors,tokenizer.json,tokenizer_config.json} \
  .devshared/models/pycoder-hybrid-12m/
[ "${WITH_DENSE:-1}" = 1 ] && cp -r "$S"/models/pycoder-dense-7m .devshared/models/
du -sh .gpubundle .devshared
git ls-files -z | xargs -0 du -cb | tail -1 | awk '{printf "tracked files: %.1f MB\n", $1 / 1e6}'

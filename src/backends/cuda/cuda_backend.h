// The CUDA backend: weights, slot arenas and activations in device memory, one stream, captured
// CUDA graphs for decode steps. Built only when nvcc is found (FLASHRT_HAVE_CUDA).
#pragma once
#include <memory>

#include "backends/backend.h"

namespace flashrt {

struct CudaOptions {
  // run_graph records a step into a CUDA graph and replays it (off: every step runs eagerly).
  bool graphs = true;
  // Prefill GEMMs with bf16 weights: split the activations into two bf16 terms (f32-accurate, two
  // tensor-core GEMMs) rather than rounding them to bf16 (one GEMM, ~3e-3 relative error).
  bool split_bf16 = true;
};

// Defaults, overridden by FLASHRT_CUDA_GRAPHS=0 and FLASHRT_CUDA_GEMM=bf16 (or =split).
CudaOptions cuda_options_from_env();
std::unique_ptr<Backend> make_cuda_backend(const CudaOptions& options);
std::unique_ptr<Backend> make_cuda_backend();  // cuda_options_from_env()
// A CUDA device of compute capability 8.0 or newer (what the shipped code runs on) is present.
bool cuda_device_present();

}  // namespace flashrt

// The CPU kernels behind CpuBackend, as plain functions so tests can call them directly and compare
// modes (e.g. chunked vs recurrent Gated DeltaNet). All work in f32 with a fixed reduction order
// per output element, so results do not depend on the thread count or on how a prompt is split into
// batches (the one exception is the chunked GDN, whose chunks align to absolute positions).
//
// Each function runs the vector kernels of the instruction set isa.cpp chose at start-up (AVX-512
// with VNNI, AVX-512, AVX2) or, on a machine with none of them, the scalar reference code here;
// kernel_isa() names the one in use. Quantized weights multiply int8-quantized activations.
#pragma once
#include <cstdint>

#include "backends/backend.h"
#include "core/thread_pool.h"

namespace flashrt::cpu {

// "avx512-vnni", "avx512", "avx2" or "scalar".
const char* kernel_isa();

// The scalar reference dot product (16 interleaved partial sums, then a tree).
float dot_f32(const float* a, const float* b, int64_t n);

// The reference matrix product every path is checked against: weight rows converted to f32 and
// dotted with f32 activations (no activation quantization).
void matmul_reference(ThreadPool& pool, float* out, const float* x, const Mat& w, int T);

void matmul(ThreadPool& pool, float* out, const float* x, const Mat& w, int T);
void embed(float* out, const Mat& table, const int32_t* ids, int T);
void rmsnorm(ThreadPool& pool, float* out, int64_t out_stride, const float* x, int64_t x_stride,
             const float* w, int rows, int dim, float eps);
void rope(ThreadPool& pool, float* x, int T, int heads, int head_dim, int rot_dim, double theta,
          int64_t pos0);
// One sequence's queries: T rows of a (out and q at its first row), its caches, its first position.
void attention(ThreadPool& pool, const AttentionArgs& a, int T, const void* k_cache,
               const void* v_cache, int64_t pos0);
// Rows [pos0, pos0 + T) of a positional region of F32 or F16 (rounded to nearest even) from src.
void store_rows(ThreadPool& pool, void* region, DType dtype, const float* src, int T,
                int64_t row_elems, int64_t pos0);
void sigmoid_gate(ThreadPool& pool, float* x, const float* gate, int rows, int dim,
                  int64_t gate_stride);
void swiglu(ThreadPool& pool, float* out, const float* gate, const float* up, int64_t n);
void add(ThreadPool& pool, float* x, const float* y, int64_t n);  // x += y
void conv1d_silu(ThreadPool& pool, float* out, const float* x, float* conv_state, const float* w,
                 int T, int channels, int K);
// One sequence's T rows of a (pointers at its first row) with its recurrent state; the chunked
// form aligns its chunks to absolute positions from the sequence's first position pos0.
void gdn_recurrent(ThreadPool& pool, const GdnArgs& a, int T, float* state);
void gdn_chunked(ThreadPool& pool, const GdnArgs& a, int T, float* state, int64_t pos0);
void gated_rmsnorm(ThreadPool& pool, float* out, const float* x, const float* z, const float* w,
                   int rows, int dim, float eps);

inline float silu(float x) {
  return x / (1.0f + __builtin_expf(-x));
}
inline float sigmoid(float x) {
  return 1.0f / (1.0f + __builtin_expf(-x));
}

}  // namespace flashrt::cpu

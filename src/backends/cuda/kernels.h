// Host entry points of the CUDA kernels (defined in the .cu files of this folder, grouped by what
// they do). Each one launches on stream `s` and checks the launch. Every value that changes from
// step to step (positions, token ids, which slot a sequence has) is read by the kernels from device
// memory and no entry point allocates or synchronizes, so a sequence of them can be captured into
// a CUDA graph. Pointers are device memory; weights are in the layouts of weight_layout.h. The
// per-sequence entry points take one sequence of a step: its T rows (activations at its first
// row), `pos` its rows' positions [T] and `slot` its slot.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "backends/backend.h"

namespace flashrt::cuda {

// A sequence's slot as the kernels find it: the device address of its entry in the step's slot
// table, read when the kernel runs (so a recorded step replays on whatever slots the table then
// names). A region is at *base + its offset.
struct SlotRef {
  uint8_t* const* base;
};

// ---- gemv.cu: decode products, T <= kGemvMaxT activation rows ----
constexpr int kGemvMaxT = 8;
void gemv(cudaStream_t s, float* out, const float* x, const Mat& w, int T);

// ---- gemm.cu: prefill products through cuBLAS (see gemm.cu for the precision scheme) ----
struct GemmBuffers {
  uint16_t* act = nullptr;   // 2 * T * K bf16: the activations split into hi and lo terms
  float* dequant = nullptr;  // band_rows * K f32: a band of dequantized weight rows
  int64_t band_rows = 0;
};
// Sizes of the buffers a gemm() of this shape needs.
size_t gemm_act_elems(const Mat& w, int T);
int64_t gemm_band_rows(const Mat& w);
void gemm(cudaStream_t s, cublasHandle_t h, float* out, const float* x, const Mat& w, int T,
          bool split_bf16, const GemmBuffers& buf);

// ---- elementwise.cu ----
void embed(cudaStream_t s, float* out, const Mat& table, const int32_t* ids, int T);
void add(cudaStream_t s, float* x, const float* y, int64_t n);
void swiglu(cudaStream_t s, float* out, const float* gate, const float* up, int64_t n);
void sigmoid_gate(cudaStream_t s, float* x, const float* gate, int rows, int dim,
                  int64_t gate_stride);
// Rows into a positional region (row t at pos[t]); a token id per row likewise.
void store_rows(cudaStream_t s, SlotRef slot, size_t region, const float* src, int T,
                int64_t row_elems, const int64_t* pos);
void store_tokens(cudaStream_t s, SlotRef slot, size_t region, const int32_t* ids, int T,
                  const int64_t* pos);
// n floats into the region (a sequence's logits).
void store_floats(cudaStream_t s, SlotRef slot, size_t region, const float* src, int64_t n);
void load_floats(cudaStream_t s, SlotRef slot, size_t region, float* dst, int64_t n);
// The i64 position region := *last_pos + 1.
void advance_pos(cudaStream_t s, SlotRef slot, size_t region, const int64_t* last_pos);

// ---- norm_rope.cu ----
void rmsnorm(cudaStream_t s, float* out, int64_t out_stride, const float* x, int64_t x_stride,
             const float* w, int rows, int dim, float eps);
void gated_rmsnorm(cudaStream_t s, float* out, const float* x, const float* z, const float* w,
                   int rows, int dim, float eps);
// Row t of x at position pos[t].
void rope(cudaStream_t s, float* x, int T, int heads, int head_dim, int rot_dim, double theta,
          const int64_t* pos);

// ---- conv.cu ----
void conv1d_silu(cudaStream_t s, float* out, const float* x, SlotRef slot, size_t conv_state,
                 const float* w, int T, int channels, int K);

// ---- attention.cu ----
// Key splits per (kv head, query block): fixed for a shape (T, heads), not for the position, so a
// captured decode step stays valid as the context grows; each split covers 1/splits of the keys.
int attention_splits(int sm_count, const AttentionArgs& a, int T);
size_t attention_partial_floats(const AttentionArgs& a, int T, int splits);  // 0 when splits == 1
// One sequence's T queries (a.out, a.q at its first row) at positions pos[0] ..
void attention(cudaStream_t s, const AttentionArgs& a, int T, SlotRef slot, const int64_t* pos,
               int splits, float* partial);

// ---- gdn.cu ----
// One sequence's T rows (a's pointers at its first row); the chunked form aligns chunks to
// absolute positions from pos[0].
void gdn_recurrent(cudaStream_t s, const GdnArgs& a, int T, SlotRef slot, const int64_t* pos);
// Dynamic shared memory of the chunked kernel for this head size (0 when it cannot run it).
size_t gdn_chunked_smem(int k_dim);
void gdn_chunked_init(size_t max_smem);  // raises the kernel's shared-memory limit once
void gdn_chunked(cudaStream_t s, const GdnArgs& a, int T, SlotRef slot, const int64_t* pos);

// ---- argmax.cu ----
void argmax(cudaStream_t s, const float* logits, int64_t n, int32_t* out);

}  // namespace flashrt::cuda

// Run-time choice of the CPU kernels' instruction set. The ISA-specific kernels live in files
// compiled with their own -m flags (kernels_avx512_vnni.cpp, kernels_avx512.cpp, kernels_avx2.cpp,
// all from the *_impl.h templates over simd_avx512.h / simd_avx2.h) and are reached only
// through the table below, after cpuid said the machine has that ISA, so the binary still runs on a
// plain x86-64. Those files include no project header with inline functions (the linker may keep
// any one copy of an inline function, and an AVX-512 copy must never end up called from baseline
// code); this header therefore holds plain data and function-pointer types only.
//
// Every table computes bit-identical results for the same inputs (the AVX2 kernels emulate the
// AVX-512 kernels' 16 lanes, integer dot products are exact, and the float operations are the same
// sequence), and each output element has one reduction order whatever the batch size T, the
// thread count or how rows are split between threads.
#pragma once
#include <cstddef>
#include <cstdint>

namespace flashrt::cpu {

enum class Isa : uint8_t { kScalar, kAvx2, kAvx512, kAvx512Vnni };

// Weight element types the tables handle (mirrors core/dtype.h's DType without including it).
enum WType : int { kWF32, kWF16, kWBF16, kWQ8_0, kWQ4_0, kWQ4_K, kWQ6_K };

struct WeightView {
  const uint8_t* data;
  size_t row_bytes;
  int64_t rows, cols;
  int type;  // WType
};

// Activations quantized to int8 for the int8 dot products, one set of rows [T, K]. Q8_0/Q4_0
// weights use 32-value blocks, Q4_K/Q6_K 256-value blocks (llama.cpp's q8_0 / q8_K); each row is
// quantized on its own, so a row's values do not depend on T.
struct QuantActs {
  int8_t* q;        // [T, K]
  float* d;         // [T, K / block]   scale of each block
  int32_t* corr;    // [T, K / 32]      32-blocks: -offset * sum(q) (see matmul_q_impl.h)
  int16_t* bsum;    // [T, K / 16]      K-quants: sum(q) per 16 values
  int16_t* bsum32;  // [T, K / 32]      K-quants: sum(q) per 32 values
  int64_t K;
  int block;  // 32 or 256
};

struct KernelTable {
  const char* name;
  // Quantizes activation rows [t0, t1) of x [*, K] for weights of type `wtype`.
  void (*quantize_acts)(const float* x, int t0, int t1, int wtype, QuantActs* a);
  // Bytes of per-thread scratch matmul_rows needs for this weight and batch size.
  size_t (*matmul_scratch)(const WeightView& w, int T);
  // Rows the row range given to matmul_rows should be a multiple of (except at the end).
  int (*matmul_row_group)(const WeightView& w, int T);
  // out[t * N + n] = sum_k x[t, k] * W[n, k] for n in [n0, n1), t in [0, T); N = w.rows.
  // Float weights read x; quantized weights read a.
  void (*matmul_rows)(float* out, const WeightView& w, int64_t n0, int64_t n1, int T,
                      const float* x, const QuantActs* a, uint8_t* scratch);

  // ---- element-wise ops (rows independent, each element computed the same way for any T) ----
  // out[r] = x[r] * inv_rms(x[r]) * (w ? w : 1) [* silu(z[r]) when z]
  void (*rmsnorm_row)(float* out, const float* x, const float* w, const float* z, int dim,
                      float eps);
  void (*swiglu)(float* out, const float* gate, const float* up, int64_t n);
  void (*sigmoid_mul)(float* x, const float* gate, int64_t n);  // x *= sigmoid(gate)
  void (*add)(float* x, const float* y, int64_t n);
  // Rotate-half RoPE of one head: v[i], v[i + half] with cs = cos[half] then sin[half].
  void (*rope_head)(float* v, const float* cs, int half);
  // Depthwise causal conv + SiLU over channels [c0, c1) of x [T, C] with state [K-1, C] (updated);
  // wt: the weights [C, K] transposed to [K, C].
  void (*conv1d_silu)(float* out, const float* x, float* state, const float* wt, int T, int C,
                      int K, int c0, int c1);

  // ---- attention: `tokens` query tokens x `group` query heads sharing one KV head ----
  // Row (t, g) at q + t * q_stride + g * hd sees keys [0, n_keys0 + t) at stride kv_stride
  // elements (f32, or IEEE half when f16); out has q's layout. scratch:
  // attention_scratch_floats(tokens * group, hd) floats.
  void (*attention_tile)(float* out, const float* q, int64_t q_stride, int group, int tokens,
                         const void* k, const void* v, bool f16, int64_t kv_stride, int64_t n_keys0,
                         int hd, float scale, float* scratch);
  // dst[i] = f32 -> IEEE half of src[i], round to nearest even.
  void (*to_f16)(uint16_t* dst, const float* src, int64_t n);

  // ---- Gated DeltaNet recurrence, one value head over T tokens ----
  // S [dk, dv] updated in place; q, k [T, dk] already normalised (q scaled); v [T, dv];
  // decay = exp(g), beta per token; out rows at stride out_stride.
  void (*gdn_head)(float* S, const float* q, const float* k, const float* v, const float* decay,
                   const float* beta, int T, int dk, int dv, float* out, int64_t out_stride);
};

// Keys of one attention block processed together (online softmax per block of keys aligned to
// position 0, so decode and prefill see the same blocks), and query tokens per prefill task (the
// key and value blocks are read once for all of them).
constexpr int kAttnKeyBlock = 64;
constexpr int kAttnQueryTile = 16;
// (static: internal linkage, so no copy of it is shared between files built with different flags)
static inline size_t attention_scratch_floats(int rows, int hd) {
  return static_cast<size_t>(rows) * (hd + 3 + kAttnKeyBlock) + 64;
}

// The table in use: the best the machine supports unless forced. nullptr means the scalar
// reference kernels.
const KernelTable* kernel_table();
Isa detected_isa();
Isa active_isa();
// Test and benchmark hook: use `isa` from now on (returns false, changing nothing, when the machine
// lacks it). kScalar selects the reference kernels.
bool force_isa(Isa isa);
const char* isa_name(Isa isa);

// Defined in kernels_avx512_vnni.cpp, kernels_avx512.cpp and kernels_avx2.cpp.
const KernelTable* avx512_vnni_kernels();
const KernelTable* avx512_kernels();
const KernelTable* avx2_kernels();

}  // namespace flashrt::cpu

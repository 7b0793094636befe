// The operations a model's forward pass is written in. A backend (CPU, CUDA) implements them over
// its own memory; models call them and never see kernels. All activations are f32. Every value that
// changes from step to step (the position, the input ids) is read by the kernels from backend
// memory, never passed as a host scalar, so a step can be captured once and replayed (CUDA graphs).
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/arena.h"
#include "core/tensor.h"

namespace flashrt {

// How the Gated DeltaNet is evaluated over a run of tokens.
enum class GdnMode : uint8_t {
  kAuto,       // the backend picks (chunked for long runs, the recurrence for short ones)
  kRecurrent,  // token by token: exact at every boundary
  kChunked,    // chunks of 64 aligned to absolute positions: exact at multiples of 64
};

struct GdnArgs {
  const float* qkv;      // [T, conv_dim] after conv + SiLU: q | k | v
  int64_t qkv_stride;    // floats between rows
  const float* alpha;    // [T, Hv] raw in_proj_a output
  const float* beta;     // [T, Hv] raw in_proj_b output
  const float* a_neg;    // [Hv] = -exp(A_log)
  const float* dt_bias;  // [Hv]
  float* state;          // [Hv, dk, dv] recurrent state, updated in place
  float* out;            // [T, Hv, dv]
  int T, n_k_heads, n_v_heads, k_dim, v_dim;
  bool tiled_heads;
  const int64_t* pos;  // absolute position of the first token (chunk alignment)
  GdnMode mode;
};

struct AttentionArgs {
  float* out;           // [T, Hq, hd]
  const float* q;       // [T, Hq, hd]
  const void* k_cache;  // [max_ctx, Hkv, hd] of kv_dtype, rows [0, pos + T) valid
  const void* v_cache;
  DType kv_dtype;  // F32 or F16
  int T, n_heads, n_kv_heads, head_dim;
  float scale;
  const int64_t* pos;  // position of the first query
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  // Element types its attention reads from a KV cache region.
  virtual bool supports_kv_dtype(DType t) const { return t == DType::F32; }

  // ---- memory ----
  virtual std::unique_ptr<Arena> new_arena(std::shared_ptr<const StateLayout> layout) = 0;
  // A buffer of backend memory (device memory on a GPU), freed when the last reference goes.
  virtual std::shared_ptr<uint8_t> alloc(size_t bytes) = 0;
  // Makes the weights usable by this backend: a GPU copies them to device memory and rewrites the
  // views to point there (a matrix listed twice, e.g. a tied LM head, is copied once). The CPU
  // copies them onto huge pages.
  virtual void upload_weights(std::span<const NamedMat> /*weights*/) {}
  // A reusable activation buffer of at least `floats` floats (valid until the next call).
  virtual float* scratch(size_t floats) = 0;
  virtual void to_device(void* dst, const void* src, size_t bytes) = 0;
  virtual void to_host(void* dst, const void* src, size_t bytes) = 0;
  virtual void copy(void* dst, const void* src, size_t bytes) = 0;  // within backend memory
  // Zeroes backend memory (a GPU overrides this with a device memset).
  virtual void fill_zero(void* dst, size_t bytes) {
    const std::vector<uint8_t> zeros(bytes, 0);
    to_device(dst, zeros.data(), bytes);
  }
  virtual void synchronize() {}
  // Runs `f` (a sequence of ops). A backend that records work (CUDA graphs) may capture it on the
  // first call for this `key` and replay the capture afterwards; `f` must then read everything that
  // varies between calls from backend memory. The CPU just calls f.
  virtual void run_captured(const void* /*key*/, const std::function<void()>& f) { f(); }

  // ---- ops ----
  // out[t, :] = row ids[t] of the table (dequantized)
  virtual void embed(float* out, const Mat& table, const int32_t* ids, int T) = 0;
  // out[r, :] = x[r, :] / rms(x[r, :]) * w, for `rows` rows of `dim`; strides in floats
  virtual void rmsnorm(float* out, int64_t out_stride, const float* x, int64_t x_stride,
                       const float* w, int rows, int dim, float eps) = 0;
  // out[t, n] = sum_k x[t, k] * W[n, k]   (out [T, W.rows], x [T, W.cols])
  virtual void matmul(float* out, const float* x, const Mat& w, int T) = 0;
  virtual void add(float* x, const float* y, int64_t n) = 0;  // x += y
  virtual void swiglu(float* out, const float* gate, const float* up,
                      int64_t n) = 0;  // silu(g) * u
  // Rotate-half RoPE on the first rot_dim dims of each head of x [T, heads, head_dim], positions
  // *pos .. *pos + T - 1.
  virtual void rope(float* x, int T, int heads, int head_dim, int rot_dim, double theta,
                    const int64_t* pos) = 0;
  // Writes T rows of `row_elems` floats into a positional region of `dtype` (F32, or F16
  // rounded to nearest even) at rows *pos ..
  virtual void store_rows(void* region, DType dtype, const float* src, int T, int64_t row_elems,
                          const int64_t* pos) = 0;
  virtual void store_tokens(int32_t* region, const int32_t* ids, int T, const int64_t* pos) = 0;
  // Causal softmax attention of T queries over the cache rows [0, *pos + t].
  virtual void attention(const AttentionArgs& a) = 0;
  // x[r, :dim] *= sigmoid(gate[r * gate_stride + :dim])
  virtual void sigmoid_gate(float* x, const float* gate, int rows, int dim,
                            int64_t gate_stride) = 0;
  // Depthwise causal conv (kernel K, weights w [C, K]) + SiLU over x [T, C], continuing from
  // conv_state [K-1, C] (oldest first), which is updated to the last K-1 inputs.
  virtual void conv1d_silu(float* out, const float* x, float* conv_state, const float* w, int T,
                           int channels, int K) = 0;
  virtual void gated_delta_net(const GdnArgs& a) = 0;
  // out[r, :] = rmsnorm(x[r, :]) * w * silu(z[r, :])
  virtual void gated_rmsnorm(float* out, const float* x, const float* z, const float* w, int rows,
                             int dim, float eps) = 0;
  virtual void advance_pos(int64_t* pos, int T) = 0;
  // Index of the largest of n logits (lowest index among equals), read back to the host. A GPU
  // reduces on the device so only 4 bytes cross the bus per greedy token.
  virtual int32_t argmax(const float* logits, int64_t n) = 0;
};

// The CPU backend (always available).
std::unique_ptr<Backend> make_cpu_backend();
// "cpu" or "cuda" (when flashrt was built with CUDA and a GPU is present); throws otherwise.
std::unique_ptr<Backend> make_backend(const std::string& name);
bool cuda_available();

}  // namespace flashrt

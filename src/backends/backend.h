// The operations a model's forward pass is written in. A backend (CPU, CUDA) implements them over
// its own memory; models call them and never see kernels. All activations are f32.
//
// One forward step runs over rows that may belong to several sequences (StepRows): matmuls and
// other row-wise ops run over all rows at once (the weights are read once for the whole step);
// RoPE, the KV store, attention, the Gated DeltaNet and the conv run per sequence against that
// sequence's slot. Every value that changes from step to step (input ids, positions, which slots
// the sequences have) is read by the kernels from backend memory, never passed as a host scalar,
// so a step can be recorded once and replayed (CUDA graphs).
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

// One sequence's rows in a step: rows [first, first + count) of every activation. The rows of one
// sequence are consecutive tokens: row first + i is at position pos[first] + i.
struct SeqRows {
  int first = 0, count = 0;
};

// The rows of one forward step. The host part (n, seqs) is the step's shape: a backend that
// records steps replays a recording only for the same shape. The arrays live in backend memory
// and may change between replays.
struct StepRows {
  int n = 0;                        // rows
  std::span<const SeqRows> seqs;    // host: each sequence's rows, in row order
  const int32_t* ids = nullptr;     // [n] the token of each row
  const int64_t* pos = nullptr;     // [n] the absolute position of each row
  uint8_t* const* slots = nullptr;  // [seqs.size()] the base of each sequence's slot (arena)
};
// A region of a step's slots is named by its byte offset from a slot's base (every slot of one
// step has the same layout: StateLayout::offsets()).

// How the Gated DeltaNet is evaluated over a run of tokens.
enum class GdnMode : uint8_t {
  kAuto,       // the backend picks (chunked for long runs, the recurrence for short ones)
  kRecurrent,  // token by token: exact at every boundary
  kChunked,    // chunks of 64 aligned to absolute positions: exact at multiples of 64
};

// A Gated DeltaNet layer over the rows of a step (or, for the CPU kernels, of one sequence).
struct GdnArgs {
  const float* qkv;      // [rows, conv_dim] after conv + SiLU: q | k | v
  int64_t qkv_stride;    // floats between rows
  const float* alpha;    // [rows, Hv] raw in_proj_a output
  const float* beta;     // [rows, Hv] raw in_proj_b output
  const float* a_neg;    // [Hv] = -exp(A_log)
  const float* dt_bias;  // [Hv]
  size_t state;          // the [Hv, dk, dv] f32 recurrent state region, updated in place
  float* out;            // [rows, Hv, dv]
  int n_k_heads, n_v_heads, k_dim, v_dim;
  bool tiled_heads;
  GdnMode mode;

  // The same layer from row `first` on (one sequence of a step).
  GdnArgs from_row(int first) const {
    GdnArgs a = *this;
    a.qkv += first * qkv_stride;
    a.alpha += static_cast<int64_t>(first) * n_v_heads;
    a.beta += static_cast<int64_t>(first) * n_v_heads;
    a.out += static_cast<int64_t>(first) * n_v_heads * v_dim;
    return a;
  }
};

// Causal attention of a step's rows over their sequences' KV caches.
struct AttentionArgs {
  float* out;      // [rows, Hq, hd]
  const float* q;  // [rows, Hq, hd]
  size_t k_cache;  // the [max_ctx, Hkv, hd] key cache region of kv_dtype
  size_t v_cache;  // and the value cache
  DType kv_dtype;  // F32 or F16
  int n_heads, n_kv_heads, head_dim;
  float scale;

  // The same attention from row `first` on (one sequence of a step).
  AttentionArgs from_row(int first) const {
    AttentionArgs a = *this;
    a.out += static_cast<int64_t>(first) * n_heads * head_dim;
    a.q += static_cast<int64_t>(first) * n_heads * head_dim;
    return a;
  }
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
  // Runs `f` (the ops of one step). A backend that records work (CUDA graphs) may record it on
  // the first calls for this `key` and replay the recording afterwards; `f` must then have the same
  // shape every time and read everything that varies between calls from backend memory. The CPU
  // just calls f.
  virtual void run_graph(const void* /*key*/, const std::function<void()>& f) { f(); }

  // ---- ops over all rows ----
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
  // x[r, :dim] *= sigmoid(gate[r * gate_stride + :dim])
  virtual void sigmoid_gate(float* x, const float* gate, int rows, int dim,
                            int64_t gate_stride) = 0;
  // out[r, :] = rmsnorm(x[r, :]) * w * silu(z[r, :])
  virtual void gated_rmsnorm(float* out, const float* x, const float* z, const float* w, int rows,
                             int dim, float eps) = 0;

  // ---- ops per sequence of a step, against its slot ----
  // Rotate-half RoPE on the first rot_dim dims of each head of x [rows, heads, head_dim], each row
  // at its position.
  virtual void rope(float* x, const StepRows& r, int heads, int head_dim, int rot_dim,
                    double theta) = 0;
  // Writes each row's `row_elems` values from src [rows, row_elems] into the positional region at
  // `region` of its sequence's slot, at the row's position (F32, or F16 rounded to nearest even).
  virtual void store_rows(const StepRows& r, size_t region, DType dtype, const float* src,
                          int64_t row_elems) = 0;
  // Each row's token id into the i32 positional region at `region`, at the row's position.
  virtual void store_tokens(const StepRows& r, size_t region) = 0;
  // Row i of src [seqs, n] into the f32 region at `region` of sequence i's slot.
  virtual void store_per_seq(const StepRows& r, size_t region, const float* src, int64_t n) = 0;
  // The reverse: row i of dst [seqs, n] = the f32 region at `region` of sequence i's slot.
  virtual void load_per_seq(const StepRows& r, size_t region, float* dst, int64_t n) = 0;
  // Sets each sequence's i64 position region at `region` past its last row.
  virtual void advance_pos(const StepRows& r, size_t region) = 0;
  // Causal softmax attention: each row's queries over its sequence's cache rows [0, its position].
  virtual void attention(const StepRows& r, const AttentionArgs& a) = 0;
  // Depthwise causal conv (kernel K, weights w [C, K]) + SiLU over x [rows, C], each sequence
  // continuing from its [K-1, C] conv state at `state` (oldest first), which is updated to its last
  // K-1 inputs.
  virtual void conv1d_silu(const StepRows& r, float* out, const float* x, size_t state,
                           const float* w, int channels, int K) = 0;
  virtual void gated_delta_net(const StepRows& r, const GdnArgs& a) = 0;

  // ---- sampling ----
  // Index of the largest of n logits (lowest index among equals), read back to the host and, when
  // `dst` is given, also left at dst (backend memory: the sampled token goes straight into the
  // slot). A GPU reduces on the device so only 4 bytes cross the bus per greedy token.
  virtual int32_t argmax(const float* logits, int64_t n, int32_t* dst = nullptr) = 0;
};

// The CPU backend (always available).
std::unique_ptr<Backend> make_cpu_backend();
// "cpu" or "cuda" (when flashrt was built with CUDA and a GPU is present); throws otherwise.
std::unique_ptr<Backend> make_backend(const std::string& name);
bool cuda_available();

}  // namespace flashrt

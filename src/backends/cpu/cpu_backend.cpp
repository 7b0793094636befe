// The CPU backend: host memory, kernels from this folder, work spread over the global thread pool.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "backends/backend.h"
#include "backends/cpu/kernels.h"
#include "core/error.h"

namespace flashrt {

namespace {

class CpuBackend : public Backend {
 public:
  CpuBackend() : pool_(ThreadPool::global()) {}
  std::string name() const override { return "cpu"; }

  std::unique_ptr<Arena> new_arena(std::shared_ptr<const StateLayout> layout) override {
    return Arena::host(std::move(layout));
  }

  std::shared_ptr<uint8_t> alloc(size_t bytes) override {
    auto* p =
        static_cast<uint8_t*>(std::aligned_alloc(64, std::max<size_t>(64, (bytes + 63) / 64 * 64)));
    if (!p) fail("cannot allocate {} bytes", bytes);
    return std::shared_ptr<uint8_t>(p, [](uint8_t* q) { std::free(q); });
  }

  float* scratch(size_t floats) override {
    if (floats > scratch_size_) {
      scratch_.reset(static_cast<float*>(std::aligned_alloc(64, (floats * 4 + 63) / 64 * 64)));
      if (!scratch_) fail("cannot allocate {} MB of activations", floats * 4 >> 20);
      scratch_size_ = floats;
    }
    return scratch_.get();
  }
  // Empty copies may come with null pointers (an empty vector's data()), which memcpy forbids.
  void to_device(void* dst, const void* src, size_t n) override {
    if (n) std::memcpy(dst, src, n);
  }
  void to_host(void* dst, const void* src, size_t n) override {
    if (n) std::memcpy(dst, src, n);
  }
  void copy(void* dst, const void* src, size_t n) override {
    if (n) std::memmove(dst, src, n);
  }
  void fill_zero(void* dst, size_t n) override {
    if (n) std::memset(dst, 0, n);
  }

  void embed(float* out, const Mat& table, const int32_t* ids, int T) override {
    cpu::embed(out, table, ids, T);
  }
  void rmsnorm(float* out, int64_t os, const float* x, int64_t xs, const float* w, int rows,
               int dim, float eps) override {
    cpu::rmsnorm(pool_, out, os, x, xs, w, rows, dim, eps);
  }
  void matmul(float* out, const float* x, const Mat& w, int T) override {
    cpu::matmul(pool_, out, x, w, T);
  }
  void add(float* x, const float* y, int64_t n) override { cpu::add(pool_, x, y, n); }
  void swiglu(float* out, const float* gate, const float* up, int64_t n) override {
    cpu::swiglu(pool_, out, gate, up, n);
  }
  void rope(float* x, int T, int heads, int hd, int rot, double theta,
            const int64_t* pos) override {
    cpu::rope(pool_, x, T, heads, hd, rot, theta, *pos);
  }
  void store_rows(float* region, const float* src, int T, int64_t row_elems,
                  const int64_t* pos) override {
    std::memcpy(region + *pos * row_elems, src, static_cast<size_t>(T * row_elems) * sizeof(float));
  }
  void store_tokens(int32_t* region, const int32_t* ids, int T, const int64_t* pos) override {
    std::memcpy(region + *pos, ids, static_cast<size_t>(T) * sizeof(int32_t));
  }
  void attention(const AttentionArgs& a) override { cpu::attention(pool_, a, *a.pos); }
  void sigmoid_gate(float* x, const float* gate, int rows, int dim, int64_t gs) override {
    cpu::sigmoid_gate(pool_, x, gate, rows, dim, gs);
  }
  void conv1d_silu(float* out, const float* x, float* state, const float* w, int T, int C,
                   int K) override {
    cpu::conv1d_silu(pool_, out, x, state, w, T, C, K);
  }
  void gated_delta_net(const GdnArgs& a) override {
    // The recurrence is exact at every token boundary and costs no more arithmetic than the chunked
    // form on a CPU, so it is the default here.
    if (a.mode == GdnMode::kChunked)
      cpu::gdn_chunked(pool_, a, *a.pos);
    else
      cpu::gdn_recurrent(pool_, a);
  }
  void gated_rmsnorm(float* out, const float* x, const float* z, const float* w, int rows, int dim,
                     float eps) override {
    cpu::gated_rmsnorm(pool_, out, x, z, w, rows, dim, eps);
  }
  void advance_pos(int64_t* pos, int T) override { *pos += T; }
  int32_t argmax(const float* logits, int64_t n) override {
    int64_t best = 0;
    for (int64_t i = 1; i < n; ++i)
      if (logits[i] > logits[best]) best = i;
    return static_cast<int32_t>(best);
  }

 private:
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  ThreadPool& pool_;
  std::unique_ptr<float, Free> scratch_;
  size_t scratch_size_ = 0;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend() {
  return std::make_unique<CpuBackend>();
}

}  // namespace flashrt

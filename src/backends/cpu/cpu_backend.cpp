// The CPU backend: host memory, kernels from this folder, work spread over the global thread pool.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "backends/backend.h"
#include "backends/cpu/kernels.h"
#include "core/error.h"
#include "core/host_memory.h"

namespace flashrt {

namespace {

class CpuBackend : public Backend {
 public:
  CpuBackend() : pool_(ThreadPool::global()) {}
  std::string name() const override { return "cpu"; }
  bool supports_kv_dtype(DType t) const override { return t == DType::F32 || t == DType::F16; }

  std::unique_ptr<Arena> new_arena(std::shared_ptr<const StateLayout> layout) override {
    return Arena::host(std::move(layout));
  }

  // Copies the weight matrices out of the file mapping into one anonymous block on huge pages.
  // Decode streams every weight byte once per token; from 4 KiB page-cache pages that costs a TLB
  // miss per page (about 15% of decode time on an F16 0.6B model), from 2 MiB pages almost none.
  void upload_weights(std::span<const NamedMat> weights) override {
    struct Item {
      const uint8_t* src;
      size_t bytes, offset;
    };
    std::vector<Item> items;
    std::vector<std::pair<Mat*, size_t>> views;
    size_t total = 0;
    for (const NamedMat& w : weights) {
      Mat& m = *w.mat;
      if (m.empty()) continue;
      size_t idx = items.size();
      for (size_t i = 0; i < items.size(); ++i)
        if (items[i].src == m.data && items[i].bytes == m.bytes()) idx = i;  // tied matrices
      if (idx == items.size()) {
        items.push_back({m.data, m.bytes(), total});
        total += (m.bytes() + 63) / 64 * 64;
      }
      views.emplace_back(&m, idx);
    }
    if (items.empty()) return;
    std::shared_ptr<uint8_t> block = alloc(total);
    pool_.parallel_for(static_cast<int64_t>(items.size()), 1, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        const Item& it = items[static_cast<size_t>(i)];
        std::memcpy(block.get() + it.offset, it.src, it.bytes);
      }
    });
    for (auto& [m, idx] : views) m->data = block.get() + items[idx].offset;
    weights_.push_back(std::move(block));
  }

  std::shared_ptr<uint8_t> alloc(size_t bytes) override {
    return std::shared_ptr<uint8_t>(host_alloc(bytes, "weights"), [](uint8_t* q) { host_free(q); });
  }

  float* scratch(size_t floats) override {
    if (floats > scratch_size_) {
      scratch_.reset(reinterpret_cast<float*>(host_alloc(floats * 4, "activations")));
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
  void sigmoid_gate(float* x, const float* gate, int rows, int dim, int64_t gs) override {
    cpu::sigmoid_gate(pool_, x, gate, rows, dim, gs);
  }

  // ---- per sequence: backend memory is host memory, so the step's arrays are read directly ----

  void rope(float* x, const StepRows& r, int heads, int hd, int rot, double theta) override {
    for (const SeqRows& s : r.seqs)
      cpu::rope(pool_, x + static_cast<int64_t>(s.first) * heads * hd, s.count, heads, hd, rot,
                theta, r.pos[s.first]);
  }
  void store_rows(const StepRows& r, size_t region, DType dtype, const float* src,
                  int64_t row_elems) override {
    for (size_t i = 0; i < r.seqs.size(); ++i) {
      const SeqRows& s = r.seqs[i];
      cpu::store_rows(pool_, r.slots[i] + region, dtype, src + s.first * row_elems, s.count,
                      row_elems, r.pos[s.first]);
    }
  }
  void store_tokens(const StepRows& r, size_t region) override {
    for (size_t i = 0; i < r.seqs.size(); ++i) {
      const SeqRows& s = r.seqs[i];
      std::memcpy(reinterpret_cast<int32_t*>(r.slots[i] + region) + r.pos[s.first], r.ids + s.first,
                  static_cast<size_t>(s.count) * sizeof(int32_t));
    }
  }
  void store_per_seq(const StepRows& r, size_t region, const float* src, int64_t n) override {
    for (size_t i = 0; i < r.seqs.size(); ++i)
      std::memcpy(r.slots[i] + region, src + static_cast<int64_t>(i) * n,
                  static_cast<size_t>(n) * sizeof(float));
  }
  void load_per_seq(const StepRows& r, size_t region, float* dst, int64_t n) override {
    for (size_t i = 0; i < r.seqs.size(); ++i)
      std::memcpy(dst + static_cast<int64_t>(i) * n, r.slots[i] + region,
                  static_cast<size_t>(n) * sizeof(float));
  }
  void advance_pos(const StepRows& r, size_t region) override {
    for (size_t i = 0; i < r.seqs.size(); ++i) {
      const SeqRows& s = r.seqs[i];
      *reinterpret_cast<int64_t*>(r.slots[i] + region) = r.pos[s.first + s.count - 1] + 1;
    }
  }
  void attention(const StepRows& r, const AttentionArgs& a) override {
    for (size_t i = 0; i < r.seqs.size(); ++i) {
      const SeqRows& s = r.seqs[i];
      const AttentionArgs one = a.from_row(s.first);
      cpu::attention(pool_, one, s.count, r.slots[i] + a.k_cache, r.slots[i] + a.v_cache,
                     r.pos[s.first]);
    }
  }
  void conv1d_silu(const StepRows& r, float* out, const float* x, size_t state, const float* w,
                   int C, int K) override {
    for (size_t i = 0; i < r.seqs.size(); ++i) {
      const SeqRows& s = r.seqs[i];
      const int64_t off = static_cast<int64_t>(s.first) * C;
      cpu::conv1d_silu(pool_, out + off, x + off, reinterpret_cast<float*>(r.slots[i] + state), w,
                       s.count, C, K);
    }
  }
  void gated_delta_net(const StepRows& r, const GdnArgs& a) override {
    for (size_t i = 0; i < r.seqs.size(); ++i) {
      const SeqRows& s = r.seqs[i];
      const GdnArgs one = a.from_row(s.first);
      float* S = reinterpret_cast<float*>(r.slots[i] + a.state);
      // The recurrence is exact at every token boundary and costs no more arithmetic than the
      // chunked form on a CPU, so it is the default here.
      if (a.mode == GdnMode::kChunked)
        cpu::gdn_chunked(pool_, one, s.count, S, r.pos[s.first]);
      else
        cpu::gdn_recurrent(pool_, one, s.count, S);
    }
  }
  void gated_rmsnorm(float* out, const float* x, const float* z, const float* w, int rows, int dim,
                     float eps) override {
    cpu::gated_rmsnorm(pool_, out, x, z, w, rows, dim, eps);
  }
  int32_t argmax(const float* logits, int64_t n, int32_t* dst) override {
    int64_t best = 0;
    for (int64_t i = 1; i < n; ++i)
      if (logits[i] > logits[best]) best = i;
    if (dst) *dst = static_cast<int32_t>(best);
    return static_cast<int32_t>(best);
  }

 private:
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  ThreadPool& pool_;
  std::vector<std::shared_ptr<uint8_t>> weights_;  // upload_weights blocks
  std::unique_ptr<float, Free> scratch_;
  size_t scratch_size_ = 0;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend() {
  return std::make_unique<CpuBackend>();
}

}  // namespace flashrt

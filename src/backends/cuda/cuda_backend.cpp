// CudaBackend: memory (arenas, buffers, weights), graph capture, and the op dispatch onto the
// kernels of this folder. Every CUDA and cuBLAS call is checked.
//
// Graph capture (run_graph): the first call for a key runs the step eagerly, which sizes every
// buffer it needs and loads its kernels; the second captures the step into a CUDA graph and
// launches it; later calls only launch the graph. Nothing may allocate during a capture: a buffer
// that would have to grow then throws instead. Growing a buffer outside a capture frees the old
// one, so it drops every graph (they hold its address); freeing an arena drops the graph keyed by
// that arena (Session's key), since a later arena may reuse the address.
#include "backends/cuda/cuda_backend.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

#include "backends/cuda/check.h"
#include "backends/cuda/kernels.h"
#include "backends/cuda/weight_layout.h"
#include "core/error.h"

namespace flashrt {

namespace {

using cuda::throw_cuda_error;

struct DeviceFree {
  void operator()(void* p) const noexcept { cudaFree(p); }
};
using DevicePtr = std::unique_ptr<void, DeviceFree>;

DevicePtr device_malloc(size_t bytes, const char* what) {
  void* p = nullptr;
  const cudaError_t e = cudaMalloc(&p, std::max<size_t>(bytes, 256));
  if (e != cudaSuccess) {
    cudaGetLastError();  // an allocation failure is not sticky; leave no error behind
    fail("cannot allocate {} MB of GPU memory for {}: {}", (bytes + (1 << 20) - 1) >> 20, what,
         cudaGetErrorString(e));
  }
  return DevicePtr(p);
}

// Captured graphs by key; shared (weakly) with the arenas' deleters.
class GraphCache {
 public:
  struct Entry {
    bool seen = false;               // ran eagerly once: its buffers are sized
    cudaGraphExec_t exec = nullptr;  // the captured step
  };
  ~GraphCache() { clear(); }
  Entry* find(const void* key) {
    auto it = entries_.find(key);
    return it == entries_.end() ? nullptr : &it->second;
  }
  Entry& operator[](const void* key) { return entries_[key]; }
  void erase(const void* key) noexcept {
    auto it = entries_.find(key);
    if (it == entries_.end()) return;
    if (it->second.exec) {
      cudaDeviceSynchronize();  // the graph may still be running
      cudaGraphExecDestroy(it->second.exec);
    }
    entries_.erase(it);
  }
  void clear() noexcept {
    for (auto& [key, e] : entries_)
      if (e.exec) cudaGraphExecDestroy(e.exec);
    entries_.clear();
  }

 private:
  std::unordered_map<const void*, Entry> entries_;
};

bool weight_dtype_supported(DType t) {
  return t == DType::F32 || t == DType::F16 || t == DType::BF16 || t == DType::Q8_0 ||
         t == DType::Q4_0;
}

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(const CudaOptions& opt)
      : opt_(opt), graphs_(std::make_shared<GraphCache>()) {
    int dev = 0;
    FLASHRT_CUDA_CHECK(cudaGetDevice(&dev));
    FLASHRT_CUDA_CHECK(cudaDeviceGetAttribute(&sm_count_, cudaDevAttrMultiProcessorCount, dev));
    int smem = 0;
    FLASHRT_CUDA_CHECK(cudaDeviceGetAttribute(&smem, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    smem_optin_ = static_cast<size_t>(smem);
    try {
      FLASHRT_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
      FLASHRT_CUBLAS_CHECK(cublasCreate(&cublas_));
      FLASHRT_CUBLAS_CHECK(cublasSetStream(cublas_, stream_));
      // A workspace of our own: cuBLAS then never allocates inside a captured graph.
      cublas_ws_ = device_malloc(kCublasWorkspace, "the cuBLAS workspace");
      FLASHRT_CUBLAS_CHECK(cublasSetWorkspace(cublas_, cublas_ws_.get(), kCublasWorkspace));
      cuda::gdn_chunked_init(smem_optin_);
      argmax_dev_ = device_malloc(sizeof(int32_t), "argmax");
      FLASHRT_CUDA_CHECK(cudaMallocHost(&argmax_host_, sizeof(int32_t)));
    } catch (...) {
      release();
      throw;
    }
  }

  ~CudaBackend() override {
    if (stream_) cudaStreamSynchronize(stream_);
    graphs_->clear();
    release();
  }

  std::string name() const override { return "cuda"; }

  // ---- memory ----

  std::unique_ptr<Arena> new_arena(std::shared_ptr<const StateLayout> layout) override {
    no_capture("new_arena");
    const size_t bytes = std::max<size_t>(256, layout->total_bytes());
    DevicePtr mem = device_malloc(bytes, "a slot's state");
    FLASHRT_CUDA_CHECK(cudaMemsetAsync(mem.get(), 0, bytes, stream_));
    FLASHRT_CUDA_CHECK(cudaStreamSynchronize(stream_));
    auto key = std::make_shared<const void*>(nullptr);
    std::weak_ptr<GraphCache> graphs = graphs_;
    auto arena = std::make_unique<Arena>(
        std::move(layout), static_cast<uint8_t*>(mem.release()),
        [graphs, key](uint8_t* p) {
          if (auto g = graphs.lock()) g->erase(*key);
          cudaFree(p);
        },
        false);
    *key = arena.get();
    return arena;
  }

  std::shared_ptr<uint8_t> alloc(size_t bytes) override {
    no_capture("alloc");
    DevicePtr mem = device_malloc(bytes, "a buffer");
    return std::shared_ptr<uint8_t>(static_cast<uint8_t*>(mem.release()),
                                    [](uint8_t* p) { cudaFree(p); });
  }

  void upload_weights(std::span<const NamedMat> weights) override;

  float* scratch(size_t floats) override {
    return static_cast<float*>(reserve(scratch_, floats * sizeof(float), "activations"));
  }

  void to_device(void* dst, const void* src, size_t n) override {
    if (n == 0) return;
    no_capture("to_device");
    FLASHRT_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDefault, stream_));
    FLASHRT_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  void to_host(void* dst, const void* src, size_t n) override {
    if (n == 0) return;
    no_capture("to_host");
    FLASHRT_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDefault, stream_));
    FLASHRT_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  // Stream-ordered device-to-device copy (regions must not overlap).
  void copy(void* dst, const void* src, size_t n) override {
    if (n == 0) return;
    FLASHRT_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, stream_));
  }
  void fill_zero(void* dst, size_t n) override {  // stream-ordered, like copy
    if (n > 0) FLASHRT_CUDA_CHECK(cudaMemsetAsync(dst, 0, n, stream_));
  }
  void synchronize() override { FLASHRT_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

  void run_graph(const void* key, const std::function<void()>& f) override;

  // ---- ops ----

  void embed(float* out, const Mat& table, const int32_t* ids, int T) override {
    if (T > 0) cuda::embed(stream_, out, table, ids, T);
  }
  void rmsnorm(float* out, int64_t os, const float* x, int64_t xs, const float* w, int rows,
               int dim, float eps) override {
    if (rows > 0 && dim > 0) cuda::rmsnorm(stream_, out, os, x, xs, w, rows, dim, eps);
  }
  void matmul(float* out, const float* x, const Mat& w, int T) override;
  void add(float* x, const float* y, int64_t n) override {
    if (n > 0) cuda::add(stream_, x, y, n);
  }
  void swiglu(float* out, const float* gate, const float* up, int64_t n) override {
    if (n > 0) cuda::swiglu(stream_, out, gate, up, n);
  }
  void sigmoid_gate(float* x, const float* gate, int rows, int dim, int64_t gs) override {
    if (rows > 0 && dim > 0) cuda::sigmoid_gate(stream_, x, gate, rows, dim, gs);
  }
  void gated_rmsnorm(float* out, const float* x, const float* z, const float* w, int rows, int dim,
                     float eps) override {
    if (rows > 0 && dim > 0) cuda::gated_rmsnorm(stream_, out, x, z, w, rows, dim, eps);
  }

  // ---- per sequence: one launch per sequence of the step; the kernels read its slot's base
  // from the step's slot table (cuda::SlotRef) and its positions from the step's arrays ----

  void rope(float* x, const StepRows& r, int heads, int hd, int rot, double theta) override {
    if (r.n > 0 && heads > 0) cuda::rope(stream_, x, r.n, heads, hd, rot, theta, r.pos);
  }
  void store_rows(const StepRows& r, size_t region, DType dtype, const float* src,
                  int64_t row_elems) override {
    if (dtype != DType::F32)
      fail(
          "the CUDA backend keeps its KV cache in f32; {} is not supported yet (use --kv-type f32)",
          dtype_name(dtype));
    if (row_elems <= 0) return;
    for (size_t i = 0; i < r.seqs.size(); ++i) {
      const SeqRows& s = r.seqs[i];
      cuda::store_rows(stream_, slot(r, i), region, src + s.first * row_elems, s.count, row_elems,
                       r.pos + s.first);
    }
  }
  void store_tokens(const StepRows& r, size_t region) override {
    for (size_t i = 0; i < r.seqs.size(); ++i) {
      const SeqRows& s = r.seqs[i];
      cuda::store_tokens(stream_, slot(r, i), region, r.ids + s.first, s.count, r.pos + s.first);
    }
  }
  void store_per_seq(const StepRows& r, size_t region, const float* src, int64_t n) override {
    for (size_t i = 0; i < r.seqs.size(); ++i)
      cuda::store_floats(stream_, slot(r, i), region, src + static_cast<int64_t>(i) * n, n);
  }
  void load_per_seq(const StepRows& r, size_t region, float* dst, int64_t n) override {
    for (size_t i = 0; i < r.seqs.size(); ++i)
      cuda::load_floats(stream_, slot(r, i), region, dst + static_cast<int64_t>(i) * n, n);
  }
  void advance_pos(const StepRows& r, size_t region) override {
    for (size_t i = 0; i < r.seqs.size(); ++i) {
      const SeqRows& s = r.seqs[i];
      cuda::advance_pos(stream_, slot(r, i), region, r.pos + s.first + s.count - 1);
    }
  }
  void attention(const StepRows& r, const AttentionArgs& a) override {
    for (size_t i = 0; i < r.seqs.size(); ++i) {
      const SeqRows& s = r.seqs[i];
      const AttentionArgs one = a.from_row(s.first);
      const int splits = cuda::attention_splits(sm_count_, one, s.count);
      float* partial = static_cast<float*>(
          reserve(attn_buf_, cuda::attention_partial_floats(one, s.count, splits) * sizeof(float),
                  "attention partial sums"));
      cuda::attention(stream_, one, s.count, slot(r, i), r.pos + s.first, splits, partial);
    }
  }
  void conv1d_silu(const StepRows& r, float* out, const float* x, size_t state, const float* w,
                   int C, int K) override {
    if (C <= 0) return;
    for (size_t i = 0; i < r.seqs.size(); ++i) {
      const int64_t off = static_cast<int64_t>(r.seqs[i].first) * C;
      cuda::conv1d_silu(stream_, out + off, x + off, slot(r, i), state, w, r.seqs[i].count, C, K);
    }
  }
  void gated_delta_net(const StepRows& r, const GdnArgs& a) override;

  int32_t argmax(const float* logits, int64_t n, int32_t* dst) override {
    no_capture("argmax");
    if (n <= 0) return 0;
    auto* dev = dst ? dst : static_cast<int32_t*>(argmax_dev_.get());
    cuda::argmax(stream_, logits, n, dev);
    FLASHRT_CUDA_CHECK(
        cudaMemcpyAsync(argmax_host_, dev, sizeof(int32_t), cudaMemcpyDeviceToHost, stream_));
    FLASHRT_CUDA_CHECK(cudaStreamSynchronize(stream_));
    return *argmax_host_;
  }

 private:
  static constexpr size_t kCublasWorkspace = size_t{32} << 20;
  // kAuto uses the chunked Gated DeltaNet from this many tokens on (the recurrence is sequential
  // over tokens; a chunk of 64 costs about as much as a few recurrent steps).
  static constexpr int kGdnChunkedFrom = 32;

  struct GrowBuffer {
    DevicePtr mem;
    size_t bytes = 0;
  };

  void release() noexcept {
    if (cublas_) cublasDestroy(cublas_);
    if (argmax_host_) cudaFreeHost(argmax_host_);
    if (stream_) cudaStreamDestroy(stream_);
    cublas_ = nullptr;
    argmax_host_ = nullptr;
    stream_ = nullptr;
  }

  // Sequence i's entry of the step's slot table.
  static cuda::SlotRef slot(const StepRows& r, size_t i) { return {r.slots + i}; }

  void no_capture(const char* what) const {
    if (capturing_)
      fail(
          "{} cannot run inside a captured CUDA graph (run_graph): it synchronizes or "
          "allocates",
          what);
  }

  // At least `bytes` of `b`, grown (never shrunk) outside captures only.
  void* reserve(GrowBuffer& b, size_t bytes, const char* what) {
    if (bytes <= b.bytes) return b.mem.get();
    if (capturing_)
      fail(
          "a captured CUDA graph step needs {} bytes of {} but {} are allocated: the step must "
          "run once without capture first (run_graph does that on a key's first call)",
          bytes, what, b.bytes);
    FLASHRT_CUDA_CHECK(cudaStreamSynchronize(stream_));  // queued work may still use the old one
    b.mem.reset();
    b.bytes = 0;
    b.mem = device_malloc(bytes, what);
    b.bytes = bytes;
    graphs_->clear();  // they hold the old address
    return b.mem.get();
  }

  CudaOptions opt_;
  int sm_count_ = 0;
  size_t smem_optin_ = 0;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  DevicePtr cublas_ws_, argmax_dev_;
  int32_t* argmax_host_ = nullptr;  // pinned
  GrowBuffer scratch_, gemm_act_, gemm_dequant_, attn_buf_;
  std::vector<DevicePtr> weights_;  // every upload_weights block, alive as long as the backend
  std::shared_ptr<GraphCache> graphs_;
  bool capturing_ = false;
};

void CudaBackend::upload_weights(std::span<const NamedMat> weights) {
  no_capture("upload_weights");
  // One device block for all weights. Matrices are identified by host address, type and shape, so
  // a tied lm_head (the embedding's address) is uploaded once and both views point to the copy.
  struct Item {
    const uint8_t* host;
    DType dtype;
    int64_t rows, cols;
    size_t offset;
  };
  std::vector<Item> items;
  std::vector<std::pair<Mat*, size_t>> views;  // Mat -> index in items
  size_t total = 0;
  for (const NamedMat& w : weights) {
    Mat& m = *w.mat;
    const std::string& name = w.name;
    if (m.empty()) continue;
    cudaPointerAttributes attr{};
    FLASHRT_CUDA_CHECK(cudaPointerGetAttributes(&attr, m.data));
    if (attr.type == cudaMemoryTypeDevice) continue;  // uploaded before
    FLASHRT_CHECK(weight_dtype_supported(m.dtype), "weight '{}': the CUDA backend cannot use {}",
                  name, dtype_name(m.dtype));
    FLASHRT_CHECK(!dtype_is_quantized(m.dtype) || m.cols % 32 == 0,
                  "weight '{}': {} rows of {} values", name, dtype_name(m.dtype), m.cols);
    size_t idx = items.size();
    for (size_t i = 0; i < items.size(); ++i)
      if (items[i].host == m.data && items[i].dtype == m.dtype && items[i].rows == m.rows &&
          items[i].cols == m.cols)
        idx = i;
    if (idx == items.size()) {
      items.push_back({m.data, m.dtype, m.rows, m.cols, total});
      total += (m.bytes() + 255) / 256 * 256;
    }
    views.emplace_back(&m, idx);
  }
  if (items.empty()) return;
  DevicePtr block = device_malloc(total, "the weights");
  auto* base = static_cast<uint8_t*>(block.get());
  std::vector<uint8_t> staging;
  for (const Item& it : items) {
    const Mat m{it.host, it.dtype, it.rows, it.cols};
    const void* src = m.data;
    if (dtype_is_quantized(m.dtype)) {  // repacked on the host (weight_layout.h)
      staging.resize(m.bytes());
      cuda::to_device_layout(m, staging.data());
      src = staging.data();
    }
    FLASHRT_CUDA_CHECK(cudaMemcpy(base + it.offset, src, m.bytes(), cudaMemcpyHostToDevice));
  }
  for (auto& [m, idx] : views) m->data = base + items[idx].offset;
  weights_.push_back(std::move(block));
}

void CudaBackend::matmul(float* out, const float* x, const Mat& w, int T) {
  if (T <= 0 || w.rows == 0) return;
  if (T <= cuda::kGemvMaxT) return cuda::gemv(stream_, out, x, w, T);
  cuda::GemmBuffers b;
  if (const size_t n = cuda::gemm_act_elems(w, T))
    b.act = static_cast<uint16_t*>(reserve(gemm_act_, n * sizeof(uint16_t), "GEMM activations"));
  if (const int64_t rows = cuda::gemm_band_rows(w)) {
    b.dequant = static_cast<float*>(reserve(
        gemm_dequant_, static_cast<size_t>(rows * w.cols) * sizeof(float), "dequantized weights"));
    b.band_rows = rows;
  }
  cuda::gemm(stream_, cublas_, out, x, w, T, opt_.split_bf16, b);
}

void CudaBackend::gated_delta_net(const StepRows& r, const GdnArgs& a) {
  FLASHRT_CHECK(a.n_k_heads > 0 && a.n_v_heads % a.n_k_heads == 0,
                "gated delta net: {} value heads over {} key heads", a.n_v_heads, a.n_k_heads);
  for (size_t i = 0; i < r.seqs.size(); ++i) {
    const SeqRows& s = r.seqs[i];
    const GdnArgs one = a.from_row(s.first);
    const bool chunked =
        a.mode == GdnMode::kChunked || (a.mode == GdnMode::kAuto && s.count >= kGdnChunkedFrom);
    // Key heads too large for the chunked kernel's shared memory run the same recurrence token
    // by token (equal up to rounding).
    if (chunked && cuda::gdn_chunked_smem(a.k_dim) <= smem_optin_)
      cuda::gdn_chunked(stream_, one, s.count, slot(r, i), r.pos + s.first);
    else
      cuda::gdn_recurrent(stream_, one, s.count, slot(r, i), r.pos + s.first);
  }
}

void CudaBackend::run_graph(const void* key, const std::function<void()>& f) {
  if (!opt_.graphs) return f();
  if (GraphCache::Entry* e = graphs_->find(key); e && e->exec) {
    FLASHRT_CUDA_CHECK(cudaGraphLaunch(e->exec, stream_));
    return;
  }
  if (!graphs_->find(key)) {
    f();  // may grow buffers, which clears the cache: mark the key afterwards
    (*graphs_)[key].seen = true;
    return;
  }
  FLASHRT_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
  capturing_ = true;
  try {
    f();
  } catch (...) {
    // Nothing of the step ran (it was only being recorded). Leave the stream usable, drop the
    // partial graph, and forget the key so that its next call runs eagerly (sizing buffers) again.
    capturing_ = false;
    cudaGraph_t g = nullptr;
    cudaStreamEndCapture(stream_, &g);
    if (g) cudaGraphDestroy(g);
    cudaGetLastError();
    graphs_->erase(key);
    throw;
  }
  capturing_ = false;
  cudaGraph_t graph = nullptr;
  FLASHRT_CUDA_CHECK(cudaStreamEndCapture(stream_, &graph));
  cudaGraphExec_t exec = nullptr;
  const cudaError_t err = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  if (err != cudaSuccess) throw_cuda_error(err, "cudaGraphInstantiate", __FILE__, __LINE__);
  (*graphs_)[key].exec = exec;
  FLASHRT_CUDA_CHECK(cudaGraphLaunch(exec, stream_));
}

}  // namespace

CudaOptions cuda_options_from_env() {
  CudaOptions o;
  if (const char* g = std::getenv("FLASHRT_CUDA_GRAPHS")) o.graphs = std::strcmp(g, "0") != 0;
  if (const char* m = std::getenv("FLASHRT_CUDA_GEMM")) o.split_bf16 = std::strcmp(m, "bf16") != 0;
  return o;
}

bool cuda_device_present() {
  static const bool present = [] {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
      cudaGetLastError();
      return false;
    }
    int dev = 0, major = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess) {
      cudaGetLastError();
      return false;
    }
    return major >= 8;  // sm_90a machine code and compute_80 PTX are what is built
  }();
  return present;
}

std::unique_ptr<Backend> make_cuda_backend(const CudaOptions& options) {
  FLASHRT_CHECK(cuda_device_present(),
                "no CUDA device of compute capability 8.0 or newer found (use --device cpu)");
  return std::make_unique<CudaBackend>(options);
}

std::unique_ptr<Backend> make_cuda_backend() {
  return make_cuda_backend(cuda_options_from_env());
}

}  // namespace flashrt

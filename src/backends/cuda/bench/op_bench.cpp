// bench_cuda_ops: the CUDA backend's ops one at a time at Qwen3.5-0.8B / Qwen3-0.6B shapes, each
// with the bytes it must move (or the flops it must do) and what that makes per second, next to a
// plain device-to-device copy (the card's practical bandwidth ceiling). Host clock around
// synchronized batches of launches, median of repeats. Not a test: it checks nothing.
//
//   bench_cuda_ops [--reps N]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/cuda/cuda_backend.h"
#include "formats/quant.h"

using namespace flashrt;

namespace {

using Clock = std::chrono::steady_clock;
int g_reps = 15;

// Median seconds per call of f (called `inner` times per timed batch).
double time_op(Backend& be, int inner, const std::function<void()>& f) {
  for (int i = 0; i < 2; ++i) f();
  be.synchronize();
  std::vector<double> t;
  for (int r = 0; r < g_reps; ++r) {
    const auto t0 = Clock::now();
    for (int i = 0; i < inner; ++i) f();
    be.synchronize();
    t.push_back(std::chrono::duration<double>(Clock::now() - t0).count() / inner);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

std::vector<float> randn(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

std::shared_ptr<uint8_t> upload(Backend& be, const std::vector<float>& v) {
  auto p = be.alloc(v.size() * sizeof(float));
  be.to_device(p.get(), v.data(), v.size() * sizeof(float));
  return p;
}

// A step of one sequence: T rows at positions pos0.., its slot at `slot`; arrays in be's memory.
struct OneSeq {
  std::shared_ptr<uint8_t> mem;
  SeqRows seq;
  StepRows rows;
  OneSeq(const OneSeq&) = delete;  // rows.seqs points at seq
  OneSeq(Backend& be, int T, int64_t pos0, uint8_t* slot) : seq{0, T} {
    std::vector<int64_t> pos(static_cast<size_t>(T));
    for (int t = 0; t < T; ++t) pos[static_cast<size_t>(t)] = pos0 + t;
    mem = be.alloc(pos.size() * 8 + 8);
    be.to_device(mem.get(), pos.data(), pos.size() * 8);
    be.to_device(mem.get() + pos.size() * 8, &slot, 8);
    rows = {T,
            {&seq, 1},
            nullptr,
            reinterpret_cast<const int64_t*>(mem.get()),
            reinterpret_cast<uint8_t* const*>(mem.get() + pos.size() * 8)};
  }
};

float* f32(const std::shared_ptr<uint8_t>& p) {
  return reinterpret_cast<float*>(p.get());
}

// A random [rows, cols] weight of type t in the backend's memory (host bytes kept alive in `keep`).
Mat weight(Backend& be, DType t, int64_t rows, int64_t cols,
           std::vector<std::vector<uint8_t>>& keep) {
  std::vector<float> row(static_cast<size_t>(cols));
  auto& bytes = keep.emplace_back(dtype_bytes(t, rows * cols));
  std::mt19937 g(static_cast<uint32_t>(rows * 31 + cols));
  std::normal_distribution<float> d(0, 0.02f);
  for (int64_t r = 0; r < rows; ++r) {
    for (auto& x : row) x = d(g);
    quantize_row(t, row.data(), bytes.data() + dtype_bytes(t, cols) * static_cast<size_t>(r), cols);
  }
  Mat m{bytes.data(), t, rows, cols};
  const NamedMat w[] = {{"bench", &m}};
  be.upload_weights(w);
  return m;
}

void row(const std::string& what, double sec, double amount, const char* unit) {
  std::printf("%-52s %10.1f us %10.1f %s\n", what.c_str(), sec * 1e6, amount / sec / 1e9, unit);
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], "--reps") == 0) g_reps = std::max(1, std::atoi(argv[i + 1]));
  if (!cuda_available()) {
    std::fprintf(stderr, "bench_cuda_ops: no CUDA device\n");
    return 1;
  }
  auto be = make_cuda_backend();
  CudaOptions plain_opt;
  plain_opt.split_bf16 = false;
  auto plain = make_cuda_backend(plain_opt);
  std::vector<std::vector<uint8_t>> keep;
  std::printf("%-52s %13s %12s\n", "op", "time", "rate");

  {  // the ceiling: bytes read + bytes written
    const size_t n = size_t{1} << 30;
    auto a = be->alloc(n), b = be->alloc(n);
    row("copy 1 GiB (read + write)", time_op(*be, 3, [&] { be->copy(b.get(), a.get(), n); }),
        2.0 * n, "GB/s");
  }

  // Decode products (GEMV): the weight bytes are the traffic.
  struct Shape {
    const char* name;
    int64_t N, K;
  };
  const Shape shapes[] = {
      {"qwen3.5 attn q+gate 8192x1024", 8192, 1024}, {"qwen3.5 gdn qkv 6144x1024", 6144, 1024},
      {"qwen3.5 mlp gate 3584x1024", 3584, 1024},    {"qwen3.5 mlp down 1024x3584", 1024, 3584},
      {"qwen3.5 lm_head 248320x1024", 248320, 1024}, {"qwen3 mlp gate 3072x1024", 3072, 1024}};
  auto x = upload(*be, randn(16 * 8192, 1));
  auto out = be->alloc(size_t{8} * 248320 * sizeof(float));
  for (DType t : {DType::BF16, DType::Q8_0}) {
    for (const Shape& s : shapes) {
      if (t == DType::Q8_0 && s.N > 100000) continue;
      const Mat w = weight(*be, t, s.N, s.K, keep);
      for (int T : {1, 4}) {
        const double sec = time_op(*be, 20, [&] { be->matmul(f32(out), f32(x), w, T); });
        row(std::string("gemv ") + std::string(dtype_name(t)) + " T=" + std::to_string(T) + " " +
                s.name,
            sec, static_cast<double>(w.bytes()), "GB/s");
      }
    }
  }

  {  // Prefill products: effective flops (2 T N K), split bf16 and plain bf16.
    const int T = 2048;
    const Mat w = weight(*be, DType::BF16, 3584, 1024, keep);
    const Mat wp = weight(*plain, DType::BF16, 3584, 1024, keep);
    auto xp = upload(*be, randn(static_cast<size_t>(T) * 1024, 2));
    auto op = be->alloc(size_t{T} * 3584 * sizeof(float));
    auto xq = upload(*plain, randn(static_cast<size_t>(T) * 1024, 2));
    auto oq = plain->alloc(size_t{T} * 3584 * sizeof(float));
    const double flops = 2.0 * T * 3584 * 1024;
    row("gemm bf16 split T=2048 3584x1024",
        time_op(*be, 5, [&] { be->matmul(f32(op), f32(xp), w, T); }), flops, "GFLOP/s");
    row("gemm bf16 plain T=2048 3584x1024",
        time_op(*plain, 5, [&] { plain->matmul(f32(oq), f32(xq), wp, T); }), flops, "GFLOP/s");
  }

  {  // Attention over an f32 KV cache: K and V bytes are the traffic of a decode step.
    const int Hq = 8, Hkv = 2, hd = 256;
    const int64_t ctx = 16384;
    // The sequence's slot: the key cache, then the value cache.
    const size_t cache = static_cast<size_t>(ctx) * Hkv * hd;
    auto kv = upload(*be, randn(2 * cache, 3));
    auto q = upload(*be, randn(size_t{512} * Hq * hd, 5));
    auto o = be->alloc(size_t{512} * Hq * hd * sizeof(float));
    const AttentionArgs a{f32(o), f32(q), 0,      cache * sizeof(float), DType::F32, Hq,
                          Hkv,    hd,     0.0625f};
    for (int64_t p : {int64_t{2047}, int64_t{16383}}) {
      const OneSeq step(*be, 1, p, kv.get());
      row("attention decode ctx=" + std::to_string(p + 1) + " (Hq 8, Hkv 2, hd 256)",
          time_op(*be, 20, [&] { be->attention(step.rows, a); }),
          2.0 * static_cast<double>(p + 1) * Hkv * hd * 4, "GB/s");
    }
    for (int64_t p : {int64_t{0}, int64_t{16384 - 512}}) {
      const OneSeq step(*be, 512, p, kv.get());
      // q.k and p.v over the visible keys: 4 hd flops per (query, key) pair.
      const double pairs = 512.0 * Hq * (static_cast<double>(p) + 256.5);
      row("attention prefill T=512 at pos=" + std::to_string(p),
          time_op(*be, 3, [&] { be->attention(step.rows, a); }), 4.0 * hd * pairs, "GFLOP/s");
    }
  }

  {  // Gated DeltaNet at Qwen3.5-0.8B's shape: the state is the traffic of a decode step.
    const int Hk = 16, Hv = 16, dk = 128, dv = 128, T = 2048;
    const int64_t C = 2LL * Hk * dk + Hv * dv;
    auto qkv = upload(*be, randn(static_cast<size_t>(T) * C, 6));
    auto al = upload(*be, randn(static_cast<size_t>(T) * Hv, 7));
    auto bt = upload(*be, randn(static_cast<size_t>(T) * Hv, 8));
    auto an = upload(*be, std::vector<float>(Hv, -1.0f));
    auto dt = upload(*be, randn(Hv, 9, 0.5f));
    auto st = upload(*be, randn(static_cast<size_t>(Hv) * dk * dv, 10, 0.1f));
    auto o = be->alloc(static_cast<size_t>(T) * Hv * dv * sizeof(float));
    for (auto [n, mode, name] : {std::tuple{1, GdnMode::kRecurrent, "gdn recurrent T=1"},
                                 std::tuple{2048, GdnMode::kChunked, "gdn chunked T=2048"},
                                 std::tuple{2048, GdnMode::kRecurrent, "gdn recurrent T=2048"}}) {
      const GdnArgs a{f32(qkv), C,  f32(al), f32(bt), f32(an), f32(dt), 0,
                      f32(o),   Hk, Hv,      dk,      dv,      false,   mode};
      const OneSeq step(*be, n, 0, st.get());  // the state is the slot's region at offset 0
      const double sec = time_op(*be, n == 1 ? 20 : 2, [&] { be->gated_delta_net(step.rows, a); });
      if (n == 1)
        row(std::string(name) + " (Hv 16, dk = dv = 128)", sec, 2.0 * Hv * dk * dv * 4,
            "GB/s (state r+w)");
      else
        row(std::string(name) + " (Hv 16, dk = dv = 128)", sec, n * 1e3, "Mtok/s");
    }
  }
  return 0;
}

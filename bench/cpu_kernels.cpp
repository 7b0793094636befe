// CPU kernel speed: the matrix products of Qwen3.5-0.8B's shapes for every weight type, prefill
// (T = 512, GFLOP/s) and decode (T = 1, GB/s of weights streamed from memory), with 1 and 2
// threads, the new kernels (best ISA, and AVX2) next to the scalar reference they replace; plus
// the machine's memory read bandwidth, which bounds decode. Medians of repeated runs.
//
//   bench_cpu_kernels [--quick] [--bandwidth] [--small-batch] [--threads N]
// --quick: only the 3584 x 1024 shape, no scalar prefill; --bandwidth: only the memory bandwidth;
// --small-batch: only products of 1-16 activation rows (decode batches, speculative verify and
// draft steps), time relative to one row, with the weights read from memory each time.
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backends/cpu/isa.h"
#include "backends/cpu/kernels.h"
#include "core/thread_pool.h"
#include "formats/quant.h"

using namespace flashrt;

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double median_time(int reps, const std::function<void()>& f) {
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    const double t0 = now();
    f();
    t.push_back(now() - t0);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// Streams `bytes` bytes with 256-bit loads (the accumulator keeps the loads alive), prefetching
// 2 KiB ahead as the decode kernels do: the best single-stream read rate of a core.
__attribute__((target("avx2"))) uint64_t read_stream(const uint8_t* p, size_t bytes) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 128 <= bytes; i += 128) {
    _mm_prefetch(reinterpret_cast<const char*>(p + i + 2048), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(p + i + 2048 + 64), _MM_HINT_T0);
    a0 = _mm256_xor_si256(a0, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i)));
    a1 = _mm256_xor_si256(a1, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
    a2 = _mm256_xor_si256(a2, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
    a3 = _mm256_xor_si256(a3, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
  }
  const __m256i a = _mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3));
  return static_cast<uint64_t>(_mm256_extract_epi64(a, 0) ^ _mm256_extract_epi64(a, 3));
}

double memory_read_gbs(ThreadPool& pool, size_t bytes, int reps) {
  auto* buf = static_cast<uint8_t*>(std::aligned_alloc(64, bytes));
  std::memset(buf, 1, bytes);
  volatile uint64_t sink = 0;
  const double t = median_time(reps, [&] {
    pool.run([&](int i, int n) {
      const size_t chunk = bytes / n / 128 * 128;
      sink = sink ^ read_stream(buf + chunk * i, chunk);
    });
  });
  std::free(buf);
  return bytes / t / 1e9;
}

struct Shape {
  const char* name;
  int64_t N, K;
};

// A weight matrix of `copies` independent copies (so decode reads them from memory, not cache).
struct WeightSet {
  DType type;
  int64_t N, K;
  size_t mat_bytes;
  int copies;
  std::unique_ptr<uint8_t[], void (*)(void*)> data{nullptr, std::free};
  WeightSet(DType t, int64_t n, int64_t k, size_t min_total) : type(t), N(n), K(k) {
    mat_bytes = dtype_bytes(t, N * K);
    copies = static_cast<int>(std::max<size_t>(1, (min_total + mat_bytes - 1) / mat_bytes));
    data.reset(static_cast<uint8_t*>(std::aligned_alloc(64, (mat_bytes * copies + 63) / 64 * 64)));
    // 64 distinct random rows, repeated (the values do not matter for speed)
    const int64_t distinct = std::min<int64_t>(64, N);
    const size_t rb = dtype_bytes(t, K);
    std::mt19937 g(1);
    std::normal_distribution<float> nd(0, 0.05f);
    std::vector<float> row(static_cast<size_t>(K));
    for (int64_t r = 0; r < distinct; ++r) {
      for (auto& v : row) v = nd(g);
      quantize_row(t, row.data(), data.get() + rb * r, K);
    }
    for (int64_t r = distinct; r < N * copies; ++r)
      std::memcpy(data.get() + rb * r, data.get() + rb * (r % distinct), rb);
  }
  Mat mat(int i) const { return Mat{data.get() + mat_bytes * i, type, N, K}; }
};

struct Args {
  bool quick = false, bandwidth_only = false, small_batch = false;
  int max_threads = 2;
};

// A step of T rows reads the weights once: ideally it costs one row's time until compute binds.
void small_batch(int threads) {
  const Shape shapes[] = {{"lm head 12m", 8192, 320},
                          {"mlp up 12m", 896, 320},
                          {"mlp down 12m", 320, 896},
                          {"mlp gate/up 0.8b", 3584, 1024},
                          {"mlp down 0.8b", 1024, 3584}};
  const int rows[] = {1, 2, 3, 4, 6, 8, 12, 16};
  ThreadPool pool(threads);
  std::printf("small batches, %d threads: us per product (weights from memory), and x T=1\n",
              threads);
  std::printf("%-17s %-5s", "shape (N x K)", "type");
  for (int T : rows) std::printf(" %11s", ("T=" + std::to_string(T)).c_str());
  std::printf("\n");
  for (const Shape& s : shapes) {
    for (DType t : {DType::BF16, DType::Q8_0}) {
      const WeightSet w(t, s.N, s.K, size_t{256} << 20);
      std::vector<float> x(static_cast<size_t>(16) * s.K), out(static_cast<size_t>(16) * s.N);
      std::mt19937 g(2);
      std::normal_distribution<float> nd(0, 1);
      for (auto& v : x) v = nd(g);
      std::printf("%-17.17s %-5s", s.name, std::string(dtype_name(t)).c_str());
      double one = 0;
      for (int T : rows) {
        const double us = median_time(5,
                                      [&] {
                                        for (int c = 0; c < w.copies; ++c)
                                          cpu::matmul(pool, out.data(), x.data(), w.mat(c), T);
                                      }) /
                          w.copies * 1e6;
        if (T == 1) one = us;
        std::printf(" %6.1f %3.1fx", us, us / one);
      }
      std::printf("\n");
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick")) args.quick = true;
    if (!std::strcmp(argv[i], "--bandwidth")) args.bandwidth_only = true;
    if (!std::strcmp(argv[i], "--small-batch")) args.small_batch = true;
    if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) args.max_threads = std::atoi(argv[++i]);
  }
  const cpu::Isa best = cpu::detected_isa();
  std::printf("kernels: %s (detected %s)\n", cpu::kernel_isa(), cpu::isa_name(best));

  if (args.small_batch) {
    small_batch(args.max_threads);
    return 0;
  }
  std::vector<int> threads;
  for (int t = 1; t <= args.max_threads; t *= 2) threads.push_back(t);
  if (threads.back() != args.max_threads) threads.push_back(args.max_threads);

  for (int nt : threads) {
    ThreadPool pool(nt);
    std::printf("memory read bandwidth, %d thread%s: %.1f GB/s (median of 5, 1 GiB)\n", nt,
                nt > 1 ? "s" : "", memory_read_gbs(pool, size_t{1} << 30, 5));
  }
  std::printf("\n");
  if (args.bandwidth_only) return 0;

  const Shape shapes[] = {
      {"mlp gate/up", 3584, 1024},      {"mlp down", 1024, 3584},    {"gdn qkv", 6144, 1024},
      {"gdn out / attn o", 1024, 2048}, {"attn q+gate", 4096, 1024},
  };
  const DType types[] = {DType::BF16, DType::F16,  DType::Q8_0,
                         DType::Q4_0, DType::Q4_K, DType::Q6_K};
  const int T = 512;
  const size_t decode_bytes = args.quick ? (size_t{128} << 20) : (size_t{512} << 20);
  const bool have_avx2 = best >= cpu::Isa::kAvx2 && best != cpu::Isa::kAvx2;

  std::printf(
      "prefill, T = %d: GFLOP/s (2 N K T / time)                decode, T = 1: GB/s of weights\n",
      T);
  std::printf("%-17s %-5s %-3s | %8s %8s %8s %6s | %8s %8s %8s %6s\n", "shape (N x K)", "type",
              "thr", "old", "new", have_avx2 ? "avx2" : "-", "x", "old", "new",
              have_avx2 ? "avx2" : "-", "x");
  for (const Shape& s : shapes) {
    for (DType t : types) {
      if (args.quick && s.N != 3584) continue;
      const WeightSet w(t, s.N, s.K, decode_bytes);
      std::vector<float> x(static_cast<size_t>(T) * s.K), out(static_cast<size_t>(T) * s.N);
      std::mt19937 g(2);
      std::normal_distribution<float> nd(0, 1);
      for (auto& v : x) v = nd(g);
      for (int nt : threads) {
        ThreadPool pool(nt);
        const double flop = 2.0 * s.N * s.K * T;
        auto prefill = [&](bool reference) {
          return flop /
                 median_time(3,
                             [&] {
                               if (reference)
                                 cpu::matmul_reference(pool, out.data(), x.data(), w.mat(0), T);
                               else
                                 cpu::matmul(pool, out.data(), x.data(), w.mat(0), T);
                             }) /
                 1e9;
        };
        auto decode = [&](bool reference, int copies) {
          return static_cast<double>(w.mat_bytes) * copies /
                 median_time(5,
                             [&] {
                               for (int c = 0; c < copies; ++c) {
                                 if (reference)
                                   cpu::matmul_reference(pool, out.data(), x.data(), w.mat(c), 1);
                                 else
                                   cpu::matmul(pool, out.data(), x.data(), w.mat(c), 1);
                               }
                             }) /
                 1e9;
        };
        const double p_old = args.quick ? 0 : prefill(true);
        const double p_new = prefill(false);
        const double d_old = decode(true, w.copies);
        const double d_new = decode(false, w.copies);
        double p_avx2 = 0, d_avx2 = 0;
        if (have_avx2) {
          cpu::force_isa(cpu::Isa::kAvx2);
          p_avx2 = prefill(false);
          d_avx2 = decode(false, w.copies);
          cpu::force_isa(best);
        }
        char name[64];
        std::snprintf(name, sizeof name, "%s %lldx%lld", s.name, static_cast<long long>(s.N),
                      static_cast<long long>(s.K));
        std::printf("%-17.17s %-5s %-3d | %8.1f %8.1f %8.1f %5.1fx | %8.2f %8.2f %8.2f %5.1fx\n",
                    nt == threads.front() ? name : "", std::string(dtype_name(t)).c_str(), nt,
                    p_old, p_new, p_avx2, p_old > 0 ? p_new / p_old : 0.0, d_old, d_new, d_avx2,
                    d_new / d_old);
        std::fflush(stdout);
      }
    }
  }
  return 0;
}

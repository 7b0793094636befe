// The CPU matrix products on every instruction set the machine has, for every weight type, on odd
// shapes: against double-precision references, and bit for bit across batch sizes, row splits,
// thread counts and instruction sets.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <tuple>
#include <vector>

#include "backends/cpu/kernels.h"
#include "backends/cpu_isa_util.h"
#include "formats/quant.h"

namespace flashrt {
namespace {

using testing_cpu::IsaScope;
using testing_cpu::machine_isas;
using testing_cpu::randn;

const DType kAllTypes[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q8_0,
                           DType::Q4_0, DType::Q4_K, DType::Q6_K};

struct Weights {
  DType type;
  int N, K;
  std::vector<uint8_t> bytes;
  std::vector<float> deq;  // what the stored weights mean
  Weights(DType t, int n, int k, uint32_t seed) : type(t), N(n), K(k) {
    const auto wf = randn(static_cast<size_t>(N) * K, seed);
    const size_t rb = dtype_bytes(t, K);
    bytes.resize(rb * N);
    deq.resize(wf.size());
    for (int r = 0; r < N; ++r) {
      quantize_row(t, wf.data() + static_cast<size_t>(r) * K, bytes.data() + rb * r, K);
      dequantize_row(t, bytes.data() + rb * r, deq.data() + static_cast<size_t>(r) * K, K);
    }
  }
  Mat mat() const { return Mat{bytes.data(), type, N, K}; }
};

bool quantized(DType t) {
  return dtype_is_quantized(t);
}
int act_block(DType t) {
  return (t == DType::Q4_K || t == DType::Q6_K) ? 256 : 32;
}

// The activations as the int8 kernels see them: per block of `B`, d = amax / 127 and
// q = round-to-nearest-even(x / d).
std::vector<double> quantized_acts(const std::vector<float>& x, int K, int B) {
  std::vector<double> out(x.size());
  for (size_t b0 = 0; b0 < x.size(); b0 += B) {
    float amax = 0;
    for (int i = 0; i < B; ++i) amax = std::max(amax, std::fabs(x[b0 + i]));
    const float d = amax / 127.0f;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    for (int i = 0; i < B; ++i)
      out[b0 + i] = static_cast<double>(d) * std::nearbyint(x[b0 + i] * id);
  }
  (void)K;
  return out;
}

// Checks out [T, N] against sum_k w[n, k] * xs[t, k] in double, within `rel` of sum |terms|.
void expect_near_reference(const std::vector<float>& out, const Weights& w,
                           const std::vector<double>& xs, int T, double rel,
                           const std::string& what) {
  for (int t = 0; t < T; ++t)
    for (int n = 0; n < w.N; ++n) {
      double s = 0, mag = 0;
      for (int k = 0; k < w.K; ++k) {
        const double p = static_cast<double>(w.deq[static_cast<size_t>(n) * w.K + k]) *
                         xs[static_cast<size_t>(t) * w.K + k];
        s += p;
        mag += std::fabs(p);
      }
      ASSERT_NEAR(out[static_cast<size_t>(t) * w.N + n], s, rel * mag + 1e-6)
          << what << " t=" << t << " n=" << n;
    }
}

std::string describe(cpu::Isa isa, DType t, int N, int K, int T) {
  return std::string(cpu::isa_name(isa)) + " " + std::string(dtype_name(t)) +
         " N=" + std::to_string(N) + " K=" + std::to_string(K) + " T=" + std::to_string(T);
}

TEST(BackendCpuMatmul, EveryTypeAndIsaAgainstDouble) {
  ThreadPool pool(3);
  for (cpu::Isa isa : machine_isas()) {
    IsaScope scope(isa);
    for (DType t : kAllTypes) {
      const bool kq = t == DType::Q4_K || t == DType::Q6_K;
      std::vector<std::tuple<int, int, int>> shapes;
      if (kq)
        shapes = {{1, 256, 1}, {17, 512, 2}, {33, 256, 7}, {40, 768, 33}, {18, 256, 512}};
      else if (quantized(t))
        shapes = {{1, 32, 1}, {15, 64, 2}, {17, 96, 7}, {33, 288, 33}, {70, 128, 5}, {20, 64, 512}};
      else
        shapes = {{1, 1, 1},    {5, 15, 2},  {17, 17, 7},   {33, 100, 33},
                  {7, 64, 512}, {66, 40, 3}, {70, 1000, 1}, {3, 77, 1}};  // T = 1: the GEMV
      for (auto [N, K, T] : shapes) {
        const Weights w(t, N, K, static_cast<uint32_t>(N * 131 + K));
        const auto x = randn(static_cast<size_t>(T) * K, static_cast<uint32_t>(T + 7));
        std::vector<float> out(static_cast<size_t>(T) * N, -1.0f);
        cpu::matmul(pool, out.data(), x.data(), w.mat(), T);
        const std::string what = describe(isa, t, N, K, T);
        if (quantized(t) && isa != cpu::Isa::kScalar) {
          // exactly the int8 product up to f32 rounding ...
          expect_near_reference(out, w, quantized_acts(x, K, act_block(t)), T, 2e-5,
                                what + " (int8 acts)");
          // ... which is near the product with the unquantized activations
          expect_near_reference(out, w, std::vector<double>(x.begin(), x.end()), T, 2e-2, what);
        } else {
          expect_near_reference(out, w, std::vector<double>(x.begin(), x.end()), T, 1e-5, what);
        }
      }
    }
  }
}

// Rows [t0, t0 + n) of x through matmul on their own.
std::vector<float> run_rows(ThreadPool& pool, const Weights& w, const std::vector<float>& x, int t0,
                            int n) {
  std::vector<float> out(static_cast<size_t>(n) * w.N);
  cpu::matmul(pool, out.data(), x.data() + static_cast<size_t>(t0) * w.K, w.mat(), n);
  return out;
}

TEST(BackendCpuMatmul, RowsAreBitIdenticalForEveryBatchSplitAndThreadCount) {
  ThreadPool p1(1), p2(2), p3(3);
  for (cpu::Isa isa : machine_isas()) {
    IsaScope scope(isa);
    for (DType t : kAllTypes) {
      const int K = act_block(t) == 256 ? 512 : 160, N = 45, T = 40;
      const Weights w(t, N, K, 11);
      const auto x = randn(static_cast<size_t>(T) * K, 12);
      const auto all = run_rows(p2, w, x, 0, T);
      const std::string what = describe(isa, t, N, K, T);
      // every split of the batch: singles (GEMV), pairs, 7s, 12s and 16s (batched decode: the
      // GEMV in passes of 8 rows), 33 + 7
      for (int step : {1, 2, 7, 12, 16, 33}) {
        for (int t0 = 0; t0 < T; t0 += step) {
          const int n = std::min(step, T - t0);
          const auto part = run_rows(p2, w, x, t0, n);
          ASSERT_EQ(0, std::memcmp(part.data(), all.data() + static_cast<size_t>(t0) * N,
                                   part.size() * 4))
              << what << " rows " << t0 << ".." << t0 + n;
        }
      }
      EXPECT_EQ(run_rows(p1, w, x, 0, T), all) << what << " 1 thread";
      EXPECT_EQ(run_rows(p3, w, x, 0, T), all) << what << " 3 threads";
      EXPECT_EQ(run_rows(p1, w, x, 5, 1), run_rows(p3, w, x, 5, 1)) << what << " GEMV threads";
    }
  }
}

TEST(BackendCpuMatmul, VectorIsasAgreeBitForBit) {
  ThreadPool pool(2);
  std::vector<cpu::Isa> isas;
  for (cpu::Isa i : machine_isas())
    if (i != cpu::Isa::kScalar) isas.push_back(i);
  if (isas.size() < 2) GTEST_SKIP() << "one vector instruction set on this machine";
  for (DType t : kAllTypes) {
    for (int T : {1, 3, 21}) {
      const int K = act_block(t) == 256 ? 256 : 96, N = 37;
      const Weights w(t, N, K, 21);
      const auto x = randn(static_cast<size_t>(T) * K, 22);
      std::vector<float> first;
      for (cpu::Isa isa : isas) {
        IsaScope scope(isa);
        const auto out = run_rows(pool, w, x, 0, T);
        if (first.empty())
          first = out;
        else
          EXPECT_EQ(0, std::memcmp(out.data(), first.data(), out.size() * 4))
              << describe(isa, t, N, K, T);
      }
    }
  }
}

TEST(BackendCpuMatmul, ExtremeActivationsAndZeroRows) {
  // All-zero activation blocks (scale 0) and huge values next to tiny ones stay finite and exact.
  ThreadPool pool(2);
  for (cpu::Isa isa : machine_isas()) {
    IsaScope scope(isa);
    for (DType t : kAllTypes) {
      const int K = 512, N = 19, T = 3;
      const Weights w(t, N, K, 5);
      auto x = randn(static_cast<size_t>(T) * K, 6);
      for (int k = 0; k < K; ++k) x[k] = 0;       // row 0 all zero
      for (int k = 0; k < 32; ++k) x[K + k] = 0;  // row 1: a zero block
      x[2 * K + 3] = 3e4f;                        // row 2: one large value
      std::vector<float> out(static_cast<size_t>(T) * N);
      cpu::matmul(pool, out.data(), x.data(), w.mat(), T);
      for (int n = 0; n < N; ++n) EXPECT_EQ(out[n], 0.0f) << describe(isa, t, N, K, T);
      for (float v : out) EXPECT_TRUE(std::isfinite(v));
    }
  }
}

}  // namespace
}  // namespace flashrt

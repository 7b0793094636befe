// CPU kernels against plain double-precision references, and the Gated DeltaNet's chunked form
// against its recurrence, on random data with odd sizes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <tuple>

#include "backends/cpu/kernels.h"
#include "backends/gdn_test_data.h"
#include "formats/quant.h"

namespace flashrt {
namespace {

using testing::GdnData;
using testing::randn;

TEST(BackendCpu, ReferenceMatmulEveryWeightTypeAgainstDouble) {
  // The scalar reference that the vector kernels fall back to (cpu_matmul_test.cpp checks those).
  ThreadPool pool(3);
  for (DType t :
       {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K}) {
    for (auto [N, K, T] : {std::tuple{1, 256, 1}, {7, 256, 3}, {33, 512, 5}, {130, 256, 1}}) {
      const auto wf = randn(static_cast<size_t>(N) * K, 1);
      std::vector<uint8_t> wq(dtype_bytes(t, static_cast<int64_t>(N) * K));
      for (int r = 0; r < N; ++r)
        quantize_row(t, wf.data() + static_cast<size_t>(r) * K, wq.data() + dtype_bytes(t, K) * r,
                     K);
      std::vector<float> deq(wf.size());
      for (int r = 0; r < N; ++r)
        dequantize_row(t, wq.data() + dtype_bytes(t, K) * r,
                       deq.data() + static_cast<size_t>(r) * K, K);
      const auto x = randn(static_cast<size_t>(T) * K, 2);
      std::vector<float> out(static_cast<size_t>(T) * N);
      cpu::matmul_reference(pool, out.data(), x.data(), Mat{wq.data(), t, N, K}, T);
      for (int i = 0; i < T; ++i)
        for (int n = 0; n < N; ++n) {
          double s = 0;
          for (int k = 0; k < K; ++k)
            s += static_cast<double>(x[static_cast<size_t>(i) * K + k]) *
                 deq[static_cast<size_t>(n) * K + k];
          EXPECT_NEAR(out[static_cast<size_t>(i) * N + n], s, 1e-4 * (1 + std::fabs(s)))
              << dtype_name(t);
        }
    }
  }
}

TEST(BackendCpu, ResultsDoNotDependOnThreadCount) {
  const int N = 77, K = 160, T = 9;
  const auto w = randn(static_cast<size_t>(N) * K, 3);
  const auto x = randn(static_cast<size_t>(T) * K, 4);
  std::vector<float> a(static_cast<size_t>(T) * N), b(a.size());
  ThreadPool p1(1), p5(5);
  cpu::matmul(p1, a.data(), x.data(),
              Mat{reinterpret_cast<const uint8_t*>(w.data()), DType::F32, N, K}, T);
  cpu::matmul(p5, b.data(), x.data(),
              Mat{reinterpret_cast<const uint8_t*>(w.data()), DType::F32, N, K}, T);
  EXPECT_EQ(a, b);
}

TEST(BackendCpu, AttentionAgainstDouble) {
  ThreadPool pool(2);
  const int T = 5, Hq = 4, Hkv = 2, hd = 16, pos0 = 11, ctx = pos0 + T;
  const auto q = randn(static_cast<size_t>(T) * Hq * hd, 5);
  const auto k = randn(static_cast<size_t>(ctx) * Hkv * hd, 6);
  const auto v = randn(static_cast<size_t>(ctx) * Hkv * hd, 7);
  std::vector<float> out(q.size());
  const float scale = 0.25f;
  cpu::attention(pool, {out.data(), q.data(), 0, 0, DType::F32, Hq, Hkv, hd, scale}, T, k.data(),
                 v.data(), pos0);
  for (int t = 0; t < T; ++t)
    for (int h = 0; h < Hq; ++h) {
      const int kh = h / (Hq / Hkv), n = pos0 + t + 1;
      std::vector<double> s(static_cast<size_t>(n));
      double mx = -1e300, z = 0;
      for (int j = 0; j < n; ++j) {
        double d = 0;
        for (int i = 0; i < hd; ++i)
          d += static_cast<double>(q[(static_cast<size_t>(t) * Hq + h) * hd + i]) *
               k[(static_cast<size_t>(j) * Hkv + kh) * hd + i];
        s[static_cast<size_t>(j)] = d * scale;
        mx = std::max(mx, s[static_cast<size_t>(j)]);
      }
      for (auto& x : s) z += x = std::exp(x - mx);
      for (int i = 0; i < hd; ++i) {
        double o = 0;
        for (int j = 0; j < n; ++j)
          o += s[static_cast<size_t>(j)] / z * v[(static_cast<size_t>(j) * Hkv + kh) * hd + i];
        EXPECT_NEAR(out[(static_cast<size_t>(t) * Hq + h) * hd + i], o, 1e-5);
      }
    }
}

TEST(BackendCpu, GatedDeltaNetChunkedMatchesRecurrence) {
  ThreadPool pool(2);
  for (bool tiled : {false, true}) {
    for (auto [T, pos0] : {std::pair{1, 0}, {63, 0}, {64, 0}, {150, 0}, {150, 37}, {200, 64}}) {
      GdnData d(T, 2, 4, 16, 24, static_cast<uint32_t>(T + pos0));
      const size_t ns = static_cast<size_t>(d.Hv) * d.dk * d.dv;
      std::vector<float> s1 = randn(ns, 9, 0.1f), s2 = s1;
      std::vector<float> o1(static_cast<size_t>(T) * d.Hv * d.dv), o2(o1.size());
      cpu::gdn_recurrent(pool, d.args(0, o1.data(), tiled), T, s1.data());
      cpu::gdn_chunked(pool, d.args(0, o2.data(), tiled), T, s2.data(), pos0);
      for (size_t i = 0; i < o1.size(); ++i)
        ASSERT_NEAR(o1[i], o2[i], 1e-4 * (1 + std::fabs(o1[i]))) << "T=" << T << " i=" << i;
      for (size_t i = 0; i < ns; ++i) ASSERT_NEAR(s1[i], s2[i], 1e-4 * (1 + std::fabs(s1[i])));
    }
  }
}

TEST(BackendCpu, GatedDeltaNetBoundariesThatAreExact) {
  // The recurrence gives identical bits for any split of a run; the chunked form for splits at
  // absolute multiples of 64 (its chunks never straddle one).
  ThreadPool pool(2);
  GdnData d(200, 2, 4, 16, 16, 3);
  const size_t ns = static_cast<size_t>(d.Hv) * d.dk * d.dv;
  const size_t row = static_cast<size_t>(d.Hv) * d.dv;
  auto run = [&](bool chunked, std::vector<int> splits) {
    std::vector<float> s(ns, 0.0f), o(200 * row);
    int t0 = 0;
    splits.push_back(200);
    for (int e : splits) {
      const auto a = d.args(t0, o.data() + static_cast<size_t>(t0) * row, false);
      if (chunked)
        cpu::gdn_chunked(pool, a, e - t0, s.data(), t0);
      else
        cpu::gdn_recurrent(pool, a, e - t0, s.data());
      t0 = e;
    }
    o.insert(o.end(), s.begin(), s.end());
    return o;
  };
  EXPECT_EQ(run(false, {}), run(false, {1, 77, 150}));
  EXPECT_EQ(run(true, {}), run(true, {64, 128}));
}

}  // namespace
}  // namespace flashrt

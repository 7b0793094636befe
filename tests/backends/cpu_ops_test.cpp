// The CPU element-wise ops, attention and the Gated DeltaNet recurrence on every instruction set
// the machine has: against the scalar reference (or double), bit for bit across batch splits, and
// bit for bit between the vector instruction sets.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <tuple>
#include <vector>

#include "backends/cpu/kernels.h"
#include "backends/cpu_isa_util.h"
#include "backends/gdn_test_data.h"
#include "core/half.h"

namespace flashrt {
namespace {

using testing_cpu::IsaScope;
using testing_cpu::machine_isas;
using testing_cpu::randn;

std::vector<cpu::Isa> vector_isas() {
  std::vector<cpu::Isa> v;
  for (cpu::Isa i : machine_isas())
    if (i != cpu::Isa::kScalar) v.push_back(i);
  return v;
}

// Runs f under the scalar reference and under every vector ISA: each near the reference, and the
// vector ISAs identical to each other.
void check_against_reference(const std::function<std::vector<float>()>& f, double tol,
                             const std::string& what) {
  std::vector<float> ref;
  {
    IsaScope s(cpu::Isa::kScalar);
    ref = f();
  }
  std::vector<float> first;
  for (cpu::Isa isa : vector_isas()) {
    IsaScope s(isa);
    const auto out = f();
    ASSERT_EQ(out.size(), ref.size());
    for (size_t i = 0; i < out.size(); ++i)
      ASSERT_NEAR(out[i], ref[i], tol * (1 + std::fabs(ref[i])))
          << what << " " << cpu::isa_name(isa) << " i=" << i;
    if (first.empty())
      first = out;
    else
      EXPECT_EQ(0, std::memcmp(out.data(), first.data(), out.size() * 4))
          << what << " " << cpu::isa_name(isa);
  }
}

TEST(BackendCpuOps, ElementwiseAgainstReference) {
  ThreadPool pool(2);
  for (int dim : {1, 15, 16, 17, 100, 1024}) {
    const int rows = 5;
    const auto x = randn(static_cast<size_t>(rows) * dim, 1, 3.0f);
    const auto z = randn(static_cast<size_t>(rows) * dim, 2, 4.0f);
    const auto w = randn(static_cast<size_t>(dim), 3);
    const std::string d = " dim=" + std::to_string(dim);
    check_against_reference(
        [&] {
          std::vector<float> o(x.size());
          cpu::rmsnorm(pool, o.data(), dim, x.data(), dim, w.data(), rows, dim, 1e-6f);
          return o;
        },
        1e-5, "rmsnorm" + d);
    check_against_reference(
        [&] {
          std::vector<float> o(x.size());
          cpu::gated_rmsnorm(pool, o.data(), x.data(), z.data(), w.data(), rows, dim, 1e-6f);
          return o;
        },
        1e-5, "gated_rmsnorm" + d);
    check_against_reference(
        [&] {
          std::vector<float> o(x.size());
          cpu::swiglu(pool, o.data(), x.data(), z.data(), static_cast<int64_t>(x.size()));
          return o;
        },
        1e-5, "swiglu" + d);
    check_against_reference(
        [&] {
          std::vector<float> o = x;
          cpu::sigmoid_gate(pool, o.data(), z.data(), rows, dim, dim);
          return o;
        },
        1e-5, "sigmoid_gate" + d);
    check_against_reference(
        [&] {
          std::vector<float> o = x;
          cpu::add(pool, o.data(), z.data(), static_cast<int64_t>(x.size()));
          return o;
        },
        0, "add" + d);
  }
  // silu / sigmoid at the ends of the exp range
  const std::vector<float> ext = {-1e30f, -200.0f, -88.5f, -87.0f, -20.0f, -1e-30f, 0.0f,
                                  1e-30f, 20.0f,   87.0f,  88.5f,  200.0f, 1e30f};
  check_against_reference(
      [&] {
        std::vector<float> o(ext.size()), one(ext.size(), 1.0f);
        cpu::swiglu(pool, o.data(), ext.data(), one.data(), static_cast<int64_t>(ext.size()));
        return o;
      },
      1e-6, "silu extremes");
}

TEST(BackendCpuOps, RopeAgainstReference) {
  ThreadPool pool(2);
  for (auto [hd, rot] : {std::pair{64, 64}, {128, 64}, {256, 64}, {40, 24}}) {
    const int T = 9, heads = 3;
    const auto x = randn(static_cast<size_t>(T) * heads * hd, 4);
    check_against_reference(
        [&] {
          std::vector<float> v = x;
          cpu::rope(pool, v.data(), T, heads, hd, rot, 1e6, 1000);
          return v;
        },
        0, "rope hd=" + std::to_string(hd));
    // a row depends on its position only: the same rows one at a time
    std::vector<float> all = x, one = x;
    cpu::rope(pool, all.data(), T, heads, hd, rot, 1e6, 1000);
    for (int t = 0; t < T; ++t)
      cpu::rope(pool, one.data() + static_cast<size_t>(t) * heads * hd, 1, heads, hd, rot, 1e6,
                1000 + t);
    EXPECT_EQ(all, one);
  }
}

TEST(BackendCpuOps, Conv1dSiluAgainstReferenceAndSplitInvariant) {
  ThreadPool pool(2);
  for (auto [T, C, K] : {std::tuple{1, 16, 4}, {7, 40, 4}, {33, 6144, 4}, {5, 17, 2}, {2, 33, 5}}) {
    const auto x = randn(static_cast<size_t>(T) * C, 1, 2.0f);
    const auto w = randn(static_cast<size_t>(C) * K, 2);
    const auto st = randn(static_cast<size_t>(K - 1) * C, 3);
    const std::string what =
        "T=" + std::to_string(T) + " C=" + std::to_string(C) + " K=" + std::to_string(K);
    // runs the tokens in pieces of `step`; returns the outputs then the state
    auto run = [&](int step) {
      std::vector<float> state = st, out(static_cast<size_t>(T) * C);
      for (int t0 = 0; t0 < T; t0 += step) {
        const int n = std::min(step, T - t0);
        cpu::conv1d_silu(pool, out.data() + static_cast<size_t>(t0) * C,
                         x.data() + static_cast<size_t>(t0) * C, state.data(), w.data(), n, C, K);
      }
      out.insert(out.end(), state.begin(), state.end());
      return out;
    };
    check_against_reference([&] { return run(T); }, 1e-5, "conv1d " + what);
    for (cpu::Isa isa : machine_isas()) {
      IsaScope s(isa);
      const auto whole = run(T);
      EXPECT_EQ(run(1), whole) << what << " " << cpu::isa_name(isa);
      EXPECT_EQ(run(2), whole) << what << " " << cpu::isa_name(isa);
    }
  }
}

// Random q, k, v; with an f16 cache, k and v are rounded to half (the float copies hold the
// rounded values, which the double reference then uses) and the kernels read the half copies.
struct AttnData {
  int T, Hq, Hkv, hd, pos0;
  bool f16;
  std::vector<float> q, k, v;
  std::vector<uint16_t> k16, v16;
  AttnData(int T_, int Hq_, int Hkv_, int hd_, int pos0_, uint32_t seed, bool f16_)
      : T(T_), Hq(Hq_), Hkv(Hkv_), hd(hd_), pos0(pos0_), f16(f16_) {
    q = randn(static_cast<size_t>(T) * Hq * hd, seed, 2.0f);
    k = randn(static_cast<size_t>(pos0 + T) * Hkv * hd, seed + 1, 2.0f);
    v = randn(static_cast<size_t>(pos0 + T) * Hkv * hd, seed + 2);
    if (!f16) return;
    for (auto* p : {&k, &v}) {
      auto& h = p == &k ? k16 : v16;
      for (float& x : *p) {
        h.push_back(f32_to_f16(x));
        x = f16_to_f32(h.back());
      }
    }
  }
  // queries [t0, t0 + n) at their positions
  std::vector<float> run(ThreadPool& pool, int t0, int n) const {
    std::vector<float> out(static_cast<size_t>(n) * Hq * hd);
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    const void* kc = f16 ? static_cast<const void*>(k16.data()) : k.data();
    const void* vc = f16 ? static_cast<const void*>(v16.data()) : v.data();
    cpu::attention(pool,
                   {out.data(), q.data() + static_cast<size_t>(t0) * Hq * hd, 0, 0,
                    f16 ? DType::F16 : DType::F32, Hq, Hkv, hd, scale},
                   n, kc, vc, pos0 + t0);
    return out;
  }
};

TEST(BackendCpuOps, AttentionAgainstDoubleAndBatchInvariant) {
  ThreadPool pool(3);
  for (auto [T, Hq, Hkv, hd, pos0, f16] : {std::tuple{1, 8, 2, 256, 0, false},
                                           {5, 4, 2, 16, 11, false},
                                           {70, 8, 2, 64, 100, false},
                                           {33, 16, 8, 128, 63, false},
                                           {3, 2, 1, 20, 200, false},
                                           {1, 6, 6, 40, 1000, false},
                                           {1, 16, 8, 128, 700, true},
                                           {70, 8, 2, 64, 100, true},
                                           {3, 2, 1, 20, 200, true}}) {
    const AttnData d(T, Hq, Hkv, hd, pos0, static_cast<uint32_t>(T * 7 + hd), f16);
    const std::string what = "T=" + std::to_string(T) + " hd=" + std::to_string(hd) +
                             " pos0=" + std::to_string(pos0) + (f16 ? " f16 cache" : "");
    for (cpu::Isa isa : machine_isas()) {
      IsaScope s(isa);
      const auto out = d.run(pool, 0, T);
      const int group = Hq / Hkv;
      const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
      for (int t = 0; t < T; ++t)
        for (int h = 0; h < Hq; ++h) {
          const int kh = h / group, n = pos0 + t + 1;
          std::vector<double> sc(static_cast<size_t>(n));
          double mx = -1e300, z = 0;
          for (int j = 0; j < n; ++j) {
            double dd = 0;
            for (int i = 0; i < hd; ++i)
              dd += static_cast<double>(d.q[(static_cast<size_t>(t) * Hq + h) * hd + i]) *
                    d.k[(static_cast<size_t>(j) * Hkv + kh) * hd + i];
            sc[static_cast<size_t>(j)] = dd * scale;
            mx = std::max(mx, sc[static_cast<size_t>(j)]);
          }
          for (auto& x : sc) z += x = std::exp(x - mx);
          for (int i = 0; i < hd; ++i) {
            double o = 0;
            for (int j = 0; j < n; ++j)
              o += sc[static_cast<size_t>(j)] / z *
                   d.v[(static_cast<size_t>(j) * Hkv + kh) * hd + i];
            ASSERT_NEAR(out[(static_cast<size_t>(t) * Hq + h) * hd + i], o, 2e-5)
                << what << " " << cpu::isa_name(isa);
          }
        }
      // each query alone (decode) and in uneven batches gives the same bits
      for (int step : {1, 7}) {
        for (int t0 = 0; t0 < T; t0 += step) {
          const int n = std::min(step, T - t0);
          const auto part = d.run(pool, t0, n);
          ASSERT_EQ(0, std::memcmp(part.data(), out.data() + static_cast<size_t>(t0) * Hq * hd,
                                   part.size() * 4))
              << what << " " << cpu::isa_name(isa) << " rows " << t0;
        }
      }
    }
  }
}

using testing::GdnData;

// Runs the recurrence over `splits` (token counts) from a zero state; returns outputs then state.
std::vector<float> run_recurrent(ThreadPool& pool, const GdnData& d,
                                 const std::vector<int>& splits) {
  std::vector<float> s(d.state_size(), 0.0f), o(d.out_size(d.T));
  int t0 = 0;
  for (int n : splits) {
    cpu::gdn_recurrent(
        pool,
        d.args(t0, o.data() + static_cast<size_t>(t0) * d.Hv * d.dv, false, GdnMode::kRecurrent), n,
        s.data());
    t0 += n;
  }
  o.insert(o.end(), s.begin(), s.end());
  return o;
}

TEST(BackendCpuOps, GatedDeltaNetRecurrenceAgainstReferenceAndSplitInvariant) {
  ThreadPool pool(2);
  for (auto [T, dk, dv] : {std::tuple{1, 16, 16}, {40, 128, 128}, {25, 32, 100}, {9, 17, 20}}) {
    const GdnData d(T, 2, 4, dk, dv, static_cast<uint32_t>(T + dk));
    const std::string what =
        "T=" + std::to_string(T) + " dk=" + std::to_string(dk) + " dv=" + std::to_string(dv);
    check_against_reference([&] { return run_recurrent(pool, d, {T}); }, 1e-4, "gdn " + what);
    for (cpu::Isa isa : machine_isas()) {
      IsaScope s(isa);
      const auto whole = run_recurrent(pool, d, {T});
      std::vector<int> ones(static_cast<size_t>(T), 1);
      EXPECT_EQ(run_recurrent(pool, d, ones), whole) << what << " " << cpu::isa_name(isa);
      if (T > 3) {
        EXPECT_EQ(run_recurrent(pool, d, {2, T - 3, 1}), whole)
            << what << " " << cpu::isa_name(isa);
      }
    }
  }
}

TEST(BackendCpuOps, KernelIsaIsNamed) {
  const std::string name = cpu::kernel_isa();
  EXPECT_TRUE(name == "scalar" || name == "avx2" || name == "avx512" || name == "avx512-vnni")
      << name;
  EXPECT_FALSE(cpu::force_isa(static_cast<cpu::Isa>(static_cast<int>(cpu::detected_isa()) + 1)));
  EXPECT_LE(cpu::active_isa(), cpu::detected_isa());
}

// The f16 KV cache write rounds exactly as the scalar f32_to_f16 (nearest even), on every ISA,
// including subnormals, overflow to infinity and ties.
TEST(BackendCpuOps, StoreRowsF16RoundsToNearestEven) {
  ThreadPool pool(2);
  const int T = 3;
  const int64_t row = 37;  // odd: exercises the vector tail
  auto src = randn(static_cast<size_t>(T * row), 91, 3.0f);
  src[0] = 1e-6f;                  // subnormal in half
  src[1] = 70000.0f;               // overflows to inf
  src[2] = 1.0f + 1.0f / 2048.0f;  // a tie: rounds to even (1.0)
  src[3] = 1.0f + 3.0f / 2048.0f;  // a tie: rounds to even (1 + 2/1024)
  src[4] = -0.0f;
  for (cpu::Isa isa : machine_isas()) {
    IsaScope s(isa);
    std::vector<uint16_t> region(static_cast<size_t>((T + 2) * row), 0xffff);
    cpu::store_rows(pool, region.data(), DType::F16, src.data(), T, row, 2);
    for (int64_t i = 0; i < 2 * row; ++i) ASSERT_EQ(region[static_cast<size_t>(i)], 0xffff);
    for (int64_t i = 0; i < T * row; ++i)
      ASSERT_EQ(region[static_cast<size_t>(2 * row + i)], f32_to_f16(src[static_cast<size_t>(i)]))
          << "element " << i << " " << cpu::isa_name(isa);
  }
}

}  // namespace
}  // namespace flashrt

// Causal GQA attention on the GPU against the CPU backend: decode (one query, long contexts: the
// split-K path with its merge kernel), short runs and prefill (several splits or one), head sizes
// 32..256 (80: a partly used lane), GQA groups 1..8, several positions. f32 throughout:
// ||gpu - cpu|| / ||cpu|| < 1e-5.
#include "gpu_test_util.h"

namespace flashrt::testing {
namespace {

struct Case {
  int T;
  int64_t pos;
  int Hq, Hkv, hd;
};

TEST(CudaAttention, MatchesCpuAtSeveralPositions) {
  FLASHRT_REQUIRE_GPU();
  const auto gpu = make_backend("cuda");
  const auto cpu = make_cpu_backend();
  uint32_t seed = 1;
  for (const Case c : {Case{1, 0, 4, 2, 32}, Case{1, 300, 8, 2, 256}, Case{1, 1000, 16, 8, 128},
                       Case{1, 4095, 5, 1, 64}, Case{3, 63, 4, 4, 64}, Case{8, 5, 8, 1, 64},
                       Case{40, 100, 6, 2, 80}, Case{200, 0, 4, 2, 128}, Case{130, 37, 5, 1, 64},
                       Case{64, 700, 8, 2, 256}}) {
    const int64_t ctx = c.pos + c.T;  // rows the queries can see
    const auto q = randn(static_cast<size_t>(c.T) * c.Hq * c.hd, seed++);
    const auto k = randn(static_cast<size_t>(ctx) * c.Hkv * c.hd, seed++);
    const auto v = randn(static_cast<size_t>(ctx) * c.Hkv * c.hd, seed++);
    const float scale = 1.0f / std::sqrt(static_cast<float>(c.hd));
    std::vector<float> want(q.size());
    cpu->attention({want.data(), q.data(), k.data(), v.data(), DType::F32, c.T, c.Hq, c.Hkv, c.hd,
                    scale, &c.pos});
    Buf<float> dq(*gpu, q), dk(*gpu, k), dv(*gpu, v);
    Buf<int64_t> dpos(*gpu, std::vector<int64_t>{c.pos});
    auto out = Buf<float>::poisoned(*gpu, q.size());
    gpu->attention({out.get(), dq.get(), dk.get(), dv.get(), DType::F32, c.T, c.Hq, c.Hkv, c.hd,
                    scale, dpos.get()});
    EXPECT_LT(rel_err(out.host(), want), 1e-5)
        << "T=" << c.T << " pos=" << c.pos << " Hq=" << c.Hq << " Hkv=" << c.Hkv << " hd=" << c.hd;
  }
}

}  // namespace
}  // namespace flashrt::testing

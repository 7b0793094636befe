// Causal GQA attention on the GPU against the CPU backend: decode (one query, long contexts: the
// split-K path with its merge kernel), short runs and prefill (several splits or one), head sizes
// 32..256 (80: a partly used lane), GQA groups 1..8, several positions. f32 throughout:
// ||gpu - cpu|| / ||cpu|| < 1e-5.
#include "backends/test_step.h"
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
    // The caches as one sequence's slot: keys at offset 0, values after them.
    std::vector<float> kv = k;
    kv.insert(kv.end(), v.begin(), v.end());
    const size_t v_at = k.size() * sizeof(float);
    std::vector<float> want(q.size());
    const TestStep cs(*cpu, c.T, c.pos, reinterpret_cast<uint8_t*>(kv.data()));
    cpu->attention(cs, {want.data(), q.data(), 0, v_at, DType::F32, c.Hq, c.Hkv, c.hd, scale});
    Buf<float> dq(*gpu, q), dkv(*gpu, kv);
    const TestStep gs(*gpu, c.T, c.pos, reinterpret_cast<uint8_t*>(dkv.get()));
    auto out = Buf<float>::poisoned(*gpu, q.size());
    gpu->attention(gs, {out.get(), dq.get(), 0, v_at, DType::F32, c.Hq, c.Hkv, c.hd, scale});
    EXPECT_LT(rel_err(out.host(), want), 1e-5)
        << "T=" << c.T << " pos=" << c.pos << " Hq=" << c.Hq << " Hkv=" << c.Hkv << " hd=" << c.hd;
  }
}

TEST(CudaAttention, SequencesOfAStepReadTheirOwnSlots) {
  // Three sequences at different positions in one step, each with its own caches: the same
  // results as the CPU backend on the same step.
  FLASHRT_REQUIRE_GPU();
  const auto gpu = make_backend("cuda");
  const auto cpu = make_cpu_backend();
  const int Hq = 8, Hkv = 2, hd = 64, ctx = 600;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const size_t cache = static_cast<size_t>(ctx) * Hkv * hd;
  struct Seq {
    int T;
    int64_t pos;
  };
  const Seq seqs[] = {{1, 500}, {5, 0}, {1, 37}};
  std::vector<std::vector<float>> kv;
  std::vector<Buf<float>> dkv;
  std::vector<TestSeq> cseqs, gseqs;
  int rows = 0;
  for (const Seq& q : seqs) {
    kv.push_back(randn(2 * cache, 40 + static_cast<uint32_t>(rows)));
    dkv.emplace_back(*gpu, kv.back());
    rows += q.T;
  }
  for (size_t i = 0; i < std::size(seqs); ++i) {
    cseqs.push_back({seqs[i].T, seqs[i].pos, reinterpret_cast<uint8_t*>(kv[i].data())});
    gseqs.push_back({seqs[i].T, seqs[i].pos, reinterpret_cast<uint8_t*>(dkv[i].get())});
  }
  const auto q = randn(static_cast<size_t>(rows) * Hq * hd, 50);
  std::vector<float> want(q.size());
  const TestStep cs(*cpu, cseqs), gs(*gpu, gseqs);
  const size_t v_at = cache * sizeof(float);
  cpu->attention(cs, {want.data(), q.data(), 0, v_at, DType::F32, Hq, Hkv, hd, scale});
  Buf<float> dq(*gpu, q);
  auto out = Buf<float>::poisoned(*gpu, q.size());
  gpu->attention(gs, {out.get(), dq.get(), 0, v_at, DType::F32, Hq, Hkv, hd, scale});
  EXPECT_LT(rel_err(out.host(), want), 1e-5);
}

}  // namespace
}  // namespace flashrt::testing

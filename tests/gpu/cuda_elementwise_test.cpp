// Norms, RoPE, activations, the causal conv, row stores and argmax on the GPU against the CPU
// backend on random data with odd sizes. All are f32 throughout: ||gpu - cpu|| / ||cpu|| < 1e-5
// (the norms' sums of squares are in double on both, RoPE's angles too); stores, the position and
// argmax are exact.
#include "backends/test_step.h"
#include "gpu_test_util.h"

namespace flashrt::testing {
namespace {

struct Both {
  std::unique_ptr<Backend> gpu = make_backend("cuda");
  std::unique_ptr<Backend> cpu = make_cpu_backend();
};

TEST(CudaElementwise, RmsnormStridedAndInPlace) {
  FLASHRT_REQUIRE_GPU();
  Both b;
  const int rows = 5, dim = 1000;
  const int64_t xs = 1003, os = 1001;
  const auto x = randn(static_cast<size_t>(rows) * xs, 1, 3.0f);
  const auto w = randn(dim, 2);
  std::vector<float> want(static_cast<size_t>(rows) * os, 0.0f);
  b.cpu->rmsnorm(want.data(), os, x.data(), xs, w.data(), rows, dim, 1e-6f);
  Buf<float> dx(*b.gpu, x), dw(*b.gpu, w);
  Buf<float> out(*b.gpu, want.size());
  out.set(std::vector<float>(want.size(), 0.0f));  // the gaps between rows stay 0
  b.gpu->rmsnorm(out.get(), os, dx.get(), xs, dw.get(), rows, dim, 1e-6f);
  EXPECT_LT(rel_err(out.host(), want), 1e-5);

  // In place over heads, as the k norm runs: rows of hd = 128.
  const int heads = 7, hd = 128;
  auto k = randn(static_cast<size_t>(heads) * hd, 3);
  const auto kw = randn(hd, 4);
  Buf<float> dk(*b.gpu, k), dkw(*b.gpu, kw);
  b.cpu->rmsnorm(k.data(), hd, k.data(), hd, kw.data(), heads, hd, 1e-6f);
  b.gpu->rmsnorm(dk.get(), hd, dk.get(), hd, dkw.get(), heads, hd, 1e-6f);
  EXPECT_LT(rel_err(dk.host(), k), 1e-5);
}

TEST(CudaElementwise, GatedRmsnorm) {
  FLASHRT_REQUIRE_GPU();
  Both b;
  const int rows = 9, dim = 96;
  const auto x = randn(static_cast<size_t>(rows) * dim, 5);
  const auto z = randn(x.size(), 6, 2.0f);
  const auto w = randn(dim, 7);
  std::vector<float> want(x.size());
  b.cpu->gated_rmsnorm(want.data(), x.data(), z.data(), w.data(), rows, dim, 1e-6f);
  Buf<float> dx(*b.gpu, x), dz(*b.gpu, z), dw(*b.gpu, w);
  auto out = Buf<float>::poisoned(*b.gpu, x.size());
  b.gpu->gated_rmsnorm(out.get(), dx.get(), dz.get(), dw.get(), rows, dim, 1e-6f);
  EXPECT_LT(rel_err(out.host(), want), 1e-5);
}

TEST(CudaElementwise, RopeFullAndPartialAtSeveralPositions) {
  FLASHRT_REQUIRE_GPU();
  Both b;
  struct Case {
    int T, heads, hd, rot;
    int64_t pos;
    double theta;
  };
  for (const Case c : {Case{5, 3, 64, 16, 1000, 1e7}, Case{1, 8, 128, 128, 0, 1e6},
                       Case{37, 2, 64, 64, 4000, 1e4}, Case{3, 5, 256, 64, 123456, 1e7}}) {
    auto x = randn(static_cast<size_t>(c.T) * c.heads * c.hd, 8);
    Buf<float> dx(*b.gpu, x);
    b.cpu->rope(x.data(), TestStep(*b.cpu, c.T, c.pos, nullptr), c.heads, c.hd, c.rot, c.theta);
    b.gpu->rope(dx.get(), TestStep(*b.gpu, c.T, c.pos, nullptr), c.heads, c.hd, c.rot, c.theta);
    EXPECT_LT(rel_err(dx.host(), x), 1e-5) << "pos " << c.pos << " rot " << c.rot;
  }
}

TEST(CudaElementwise, RopeOfSequencesAtDifferentPositions) {
  FLASHRT_REQUIRE_GPU();
  Both b;
  const int heads = 3, hd = 64, rot = 16;
  auto x = randn(static_cast<size_t>(5) * heads * hd, 20);
  Buf<float> dx(*b.gpu, x);
  const std::vector<TestSeq> seqs = {{3, 100, nullptr}, {2, 7, nullptr}};
  b.cpu->rope(x.data(), TestStep(*b.cpu, seqs), heads, hd, rot, 1e7);
  b.gpu->rope(dx.get(), TestStep(*b.gpu, seqs), heads, hd, rot, 1e7);
  EXPECT_LT(rel_err(dx.host(), x), 1e-5);
}

TEST(CudaElementwise, ConvOfSequencesUsesEachSequencesState) {
  FLASHRT_REQUIRE_GPU();
  Both b;
  const int C = 37, K = 4;
  const auto w = randn(static_cast<size_t>(C) * K, 21);
  Buf<float> dw(*b.gpu, w);
  std::vector<std::vector<float>> states = {randn(static_cast<size_t>(K - 1) * C, 22),
                                            randn(static_cast<size_t>(K - 1) * C, 23)};
  std::vector<Buf<float>> dstates;
  for (const auto& st : states) dstates.emplace_back(*b.gpu, st);
  const auto x = randn(static_cast<size_t>(7) * C, 24);  // rows: 5 of the first, 2 of the second
  std::vector<float> want(x.size());
  const std::vector<TestSeq> cseqs = {{5, 10, reinterpret_cast<uint8_t*>(states[0].data())},
                                      {2, 0, reinterpret_cast<uint8_t*>(states[1].data())}};
  const std::vector<TestSeq> gseqs = {{5, 10, reinterpret_cast<uint8_t*>(dstates[0].get())},
                                      {2, 0, reinterpret_cast<uint8_t*>(dstates[1].get())}};
  b.cpu->conv1d_silu(TestStep(*b.cpu, cseqs), want.data(), x.data(), 0, w.data(), C, K);
  Buf<float> dx(*b.gpu, x);
  auto out = Buf<float>::poisoned(*b.gpu, x.size());
  b.gpu->conv1d_silu(TestStep(*b.gpu, gseqs), out.get(), dx.get(), 0, dw.get(), C, K);
  EXPECT_LT(rel_err(out.host(), want), 1e-5);
  for (size_t i = 0; i < states.size(); ++i) EXPECT_EQ(dstates[i].host(), states[i]) << i;
}

TEST(CudaElementwise, AddSwigluSigmoidGate) {
  FLASHRT_REQUIRE_GPU();
  Both b;
  const int64_t n = 1001;
  auto x = randn(n, 9);
  const auto y = randn(n, 10);
  Buf<float> dx(*b.gpu, x), dy(*b.gpu, y);
  b.cpu->add(x.data(), y.data(), n);
  b.gpu->add(dx.get(), dy.get(), n);
  EXPECT_EQ(dx.host(), x);  // one rounding, identical

  auto gate = randn(n, 11, 3.0f);
  const auto up = randn(n, 12);
  Buf<float> dg(*b.gpu, gate), du(*b.gpu, up);
  b.cpu->swiglu(gate.data(), gate.data(), up.data(), n);  // in place, as the MLP runs it
  b.gpu->swiglu(dg.get(), dg.get(), du.get(), n);
  EXPECT_LT(rel_err(dg.host(), gate), 1e-5);

  const int rows = 6, dim = 40;
  const int64_t gs = 80;  // gated attention: [q | gate] per head
  auto a = randn(static_cast<size_t>(rows) * dim, 13);
  const auto g = randn(static_cast<size_t>(rows) * gs, 14, 2.0f);
  Buf<float> da(*b.gpu, a), dgate(*b.gpu, g);
  b.cpu->sigmoid_gate(a.data(), g.data() + dim, rows, dim, gs);
  b.gpu->sigmoid_gate(da.get(), dgate.get() + dim, rows, dim, gs);
  EXPECT_LT(rel_err(da.host(), a), 1e-5);
}

TEST(CudaElementwise, ConvContinuesItsStateAcrossCalls) {
  FLASHRT_REQUIRE_GPU();
  Both b;
  for (int K : {4, 2}) {
    const int C = 37;
    auto state = randn(static_cast<size_t>(K - 1) * C, 15);
    const auto w = randn(static_cast<size_t>(C) * K, 16);
    Buf<float> dstate(*b.gpu, state), dw(*b.gpu, w);
    for (int T : {1, 2, 5, 100, 1}) {
      const auto x = randn(static_cast<size_t>(T) * C, 17 + T);
      std::vector<float> want(x.size());
      // The state is the region at offset 0 of the sequence's slot.
      b.cpu->conv1d_silu(TestStep(*b.cpu, T, 0, reinterpret_cast<uint8_t*>(state.data())),
                         want.data(), x.data(), 0, w.data(), C, K);
      Buf<float> dx(*b.gpu, x);
      auto out = Buf<float>::poisoned(*b.gpu, x.size());
      b.gpu->conv1d_silu(TestStep(*b.gpu, T, 0, reinterpret_cast<uint8_t*>(dstate.get())),
                         out.get(), dx.get(), 0, dw.get(), C, K);
      EXPECT_LT(rel_err(out.host(), want), 1e-5) << "K=" << K << " T=" << T;
      EXPECT_EQ(dstate.host(), state) << "K=" << K << " T=" << T;  // copies of the inputs
    }
  }
}

TEST(CudaElementwise, StoresAndPositionsWriteEachSequencesSlot) {
  // Two sequences of one step, each with a slot of [rows x row] f32 KV rows, [rows] tokens, a
  // position and [vocab] logits: rows land at their positions in their own slot.
  FLASHRT_REQUIRE_GPU();
  Both b;
  const int rows = 10, row = 24, vocab = 7;
  const size_t tokens_at = rows * row * 4, pos_at = tokens_at + rows * 4, logits_at = pos_at + 8;
  const size_t slot_bytes = logits_at + vocab * 4;
  std::vector<std::vector<uint8_t>> slots(2, std::vector<uint8_t>(slot_bytes, 0));
  std::vector<Buf<uint8_t>> dslots;
  for (const auto& sl : slots) dslots.emplace_back(*b.gpu, sl);
  const std::vector<TestSeq> cseqs = {{4, 3, slots[0].data(), {5, 6, 7, 8}},
                                      {1, 9, slots[1].data(), {2}}};
  std::vector<TestSeq> gseqs = cseqs;
  for (size_t i = 0; i < gseqs.size(); ++i) gseqs[i].slot = dslots[i].get();
  const TestStep cs(*b.cpu, cseqs), gs(*b.gpu, gseqs);
  const auto src = randn(5 * row, 18);
  const auto logits = randn(2 * vocab, 19);
  Buf<float> dsrc(*b.gpu, src), dlogits(*b.gpu, logits);
  b.cpu->store_rows(cs, 0, DType::F32, src.data(), row);
  b.cpu->store_tokens(cs, tokens_at);
  b.cpu->advance_pos(cs, pos_at);
  b.cpu->store_per_seq(cs, logits_at, logits.data(), vocab);
  b.gpu->store_rows(gs, 0, DType::F32, dsrc.get(), row);
  b.gpu->store_tokens(gs, tokens_at);
  b.gpu->advance_pos(gs, pos_at);
  b.gpu->store_per_seq(gs, logits_at, dlogits.get(), vocab);
  for (size_t i = 0; i < slots.size(); ++i) EXPECT_EQ(dslots[i].host(), slots[i]) << "slot " << i;
  int64_t p1;
  std::memcpy(&p1, slots[1].data() + pos_at, 8);
  EXPECT_EQ(p1, 10);
}

TEST(CudaElementwise, ArgmaxTakesTheLowestIndexAmongEquals) {
  FLASHRT_REQUIRE_GPU();
  Both b;
  auto l = randn(151936, 19);
  Buf<float> dl(*b.gpu, l);
  EXPECT_EQ(b.gpu->argmax(dl.get(), static_cast<int64_t>(l.size())),
            b.cpu->argmax(l.data(), static_cast<int64_t>(l.size())));
  l[70000] = l[90000] = 100.0f;
  dl.set(l);
  EXPECT_EQ(b.gpu->argmax(dl.get(), static_cast<int64_t>(l.size())), 70000);
  Buf<int32_t> at(*b.gpu, std::vector<int32_t>{-1});  // the token also goes to backend memory
  EXPECT_EQ(b.gpu->argmax(dl.get(), static_cast<int64_t>(l.size()), at.get()), 70000);
  EXPECT_EQ(at.host(), std::vector<int32_t>{70000});
  std::vector<float> same(1000, 1.5f);
  Buf<float> ds(*b.gpu, same);
  EXPECT_EQ(b.gpu->argmax(ds.get(), 1000), 0);
  EXPECT_EQ(b.gpu->argmax(ds.get() + 1, 5), 0);
}

}  // namespace
}  // namespace flashrt::testing

// The Gated DeltaNet on the GPU against the CPU: the recurrence against the CPU recurrence and the
// chunked form against the CPU chunked form (outputs and the updated state), with grouped and
// tiled value heads, at chunk-aligned and unaligned positions, at a small head size and at
// Qwen3.5's (dk = dv = 128). Tolerances on ||gpu - cpu|| / ||cpu||: 1e-5 for the recurrence (f32,
// only summation orders differ); 1e-4 for the chunked form, whose triangular solve amplifies
// rounding (the CPU's own chunked-vs-recurrent test allows 1e-4). Also the exact boundaries of
// each form: splitting a run anywhere (recurrence) or at multiples of 64 (chunked) gives the same
// bits.
#include "backends/gdn_test_data.h"
#include "backends/test_step.h"
#include "gpu_test_util.h"

namespace flashrt::testing {
namespace {

// The same data in device memory.
struct DevGdn {
  Buf<float> qkv, alpha, beta, a_neg, dt_bias;
  DevGdn(Backend& be, const GdnData& d)
      : qkv(be, d.qkv),
        alpha(be, d.alpha),
        beta(be, d.beta),
        a_neg(be, d.a_neg),
        dt_bias(be, d.dt_bias) {}
};

// Tokens from t0 on of the device copy; the state at offset 0 of the sequence's slot.
GdnArgs dev_args(const GdnData& d, const DevGdn& g, int t0, float* out, bool tiled, GdnMode mode) {
  return {g.qkv.get() + t0 * d.stride(),
          d.stride(),
          g.alpha.get() + t0 * d.Hv,
          g.beta.get() + t0 * d.Hv,
          g.a_neg.get(),
          g.dt_bias.get(),
          0,
          out,
          d.Hk,
          d.Hv,
          d.dk,
          d.dv,
          tiled,
          mode};
}

TEST(CudaGdn, RecurrentAndChunkedMatchTheCpu) {
  FLASHRT_REQUIRE_GPU();
  const auto gpu = make_backend("cuda");
  const auto cpu = make_cpu_backend();
  struct Dims {
    int Hk, Hv, dk, dv;
  };
  for (const Dims dm : {Dims{2, 4, 16, 24}, Dims{2, 4, 128, 128}, Dims{1, 3, 40, 72}}) {
    for (bool tiled : {false, true}) {
      for (auto [T, pos0] :
           {std::pair{1, 0}, {7, 5}, {63, 0}, {64, 0}, {150, 0}, {150, 37}, {200, 64}}) {
        for (GdnMode mode : {GdnMode::kRecurrent, GdnMode::kChunked}) {
          const GdnData d(T, dm.Hk, dm.Hv, dm.dk, dm.dv, static_cast<uint32_t>(T + pos0));
          auto state = randn(d.state_size(), 9, 0.1f);
          std::vector<float> out(d.out_size(T));
          Buf<float> dstate(*gpu, state);
          auto dout = Buf<float>::poisoned(*gpu, out.size());
          const DevGdn g(*gpu, d);
          cpu->gated_delta_net(TestStep(*cpu, T, pos0, reinterpret_cast<uint8_t*>(state.data())),
                               d.args(0, out.data(), tiled, mode));
          gpu->gated_delta_net(TestStep(*gpu, T, pos0, reinterpret_cast<uint8_t*>(dstate.get())),
                               dev_args(d, g, 0, dout.get(), tiled, mode));
          const double tol = mode == GdnMode::kChunked ? 1e-4 : 1e-5;
          const std::string what = "dk=" + std::to_string(dm.dk) +
                                   " tiled=" + std::to_string(tiled) + " T=" + std::to_string(T) +
                                   " pos=" + std::to_string(pos0) +
                                   (mode == GdnMode::kChunked ? " chunked" : " recurrent");
          EXPECT_LT(rel_err(dout.host(), out), tol) << what;
          EXPECT_LT(rel_err(dstate.host(), state), tol) << what;
        }
      }
    }
  }
}

TEST(CudaGdn, SequencesOfAStepAdvanceTheirOwnState) {
  // Two sequences in one step: 5 rows at position 3 and 70 rows at position 37 (chunks aligned to
  // each sequence's own positions), each with its own recurrent state.
  FLASHRT_REQUIRE_GPU();
  const auto gpu = make_backend("cuda");
  const auto cpu = make_cpu_backend();
  const GdnData d(75, 2, 4, 32, 32, 11);
  const DevGdn g(*gpu, d);
  for (GdnMode mode : {GdnMode::kRecurrent, GdnMode::kChunked}) {
    std::vector<std::vector<float>> states = {randn(d.state_size(), 12, 0.1f),
                                              randn(d.state_size(), 13, 0.1f)};
    std::vector<Buf<float>> dstates;
    for (const auto& st : states) dstates.emplace_back(*gpu, st);
    std::vector<float> out(d.out_size(75));
    auto dout = Buf<float>::poisoned(*gpu, out.size());
    const std::vector<TestSeq> cseqs = {{5, 3, reinterpret_cast<uint8_t*>(states[0].data())},
                                        {70, 37, reinterpret_cast<uint8_t*>(states[1].data())}};
    const std::vector<TestSeq> gseqs = {{5, 3, reinterpret_cast<uint8_t*>(dstates[0].get())},
                                        {70, 37, reinterpret_cast<uint8_t*>(dstates[1].get())}};
    cpu->gated_delta_net(TestStep(*cpu, cseqs), d.args(0, out.data(), false, mode));
    gpu->gated_delta_net(TestStep(*gpu, gseqs), dev_args(d, g, 0, dout.get(), false, mode));
    const double tol = mode == GdnMode::kChunked ? 1e-4 : 1e-5;
    EXPECT_LT(rel_err(dout.host(), out), tol);
    for (size_t i = 0; i < states.size(); ++i)
      EXPECT_LT(rel_err(dstates[i].host(), states[i]), tol);
  }
}

TEST(CudaGdn, BoundariesThatAreExact) {
  FLASHRT_REQUIRE_GPU();
  const auto gpu = make_backend("cuda");
  const GdnData d(200, 2, 4, 32, 32, 3);
  const DevGdn g(*gpu, d);
  const size_t row = static_cast<size_t>(d.Hv) * d.dv;
  auto run = [&](GdnMode mode, std::vector<int> splits) {
    Buf<float> state(*gpu, std::vector<float>(d.state_size(), 0.0f));
    auto out = Buf<float>::poisoned(*gpu, d.out_size(200));
    int t0 = 0;
    splits.push_back(200);
    for (int e : splits) {
      gpu->gated_delta_net(TestStep(*gpu, e - t0, t0, reinterpret_cast<uint8_t*>(state.get())),
                           dev_args(d, g, t0, out.get() + t0 * row, false, mode));
      t0 = e;
    }
    auto o = out.host();
    const auto s = state.host();
    o.insert(o.end(), s.begin(), s.end());
    return o;
  };
  EXPECT_EQ(run(GdnMode::kRecurrent, {}), run(GdnMode::kRecurrent, {1, 77, 150}));
  EXPECT_EQ(run(GdnMode::kChunked, {}), run(GdnMode::kChunked, {64, 128}));
}

}  // namespace
}  // namespace flashrt::testing

// Random inputs of a Gated DeltaNet layer (T tokens, Hk key heads, Hv value heads) and the GdnArgs
// that run tokens of them, shared by the CPU and GPU kernel tests.
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "backends/backend.h"
#include "test_random.h"

namespace flashrt::testing {

struct GdnData {
  int T, Hk, Hv, dk, dv;
  std::vector<float> qkv, alpha, beta, a_neg, dt_bias;
  GdnData(int T_, int Hk_, int Hv_, int dk_, int dv_, uint32_t seed)
      : T(T_), Hk(Hk_), Hv(Hv_), dk(dk_), dv(dv_) {
    qkv = randn(static_cast<size_t>(T) * stride(), seed);
    alpha = randn(static_cast<size_t>(T) * Hv, seed + 1);
    beta = randn(static_cast<size_t>(T) * Hv, seed + 2);
    a_neg = randn(static_cast<size_t>(Hv), seed + 3, 0.5f);
    for (auto& a : a_neg) a = -std::exp(a);
    dt_bias = randn(static_cast<size_t>(Hv), seed + 4, 0.5f);
  }
  int64_t stride() const { return 2LL * Hk * dk + 1LL * Hv * dv; }
  size_t state_size() const { return static_cast<size_t>(Hv) * dk * dv; }
  size_t out_size(int n) const { return static_cast<size_t>(n) * Hv * dv; }
  // Tokens from t0 on of this data, the recurrent state at offset 0 of the sequence's slot.
  GdnArgs args(int t0, float* out, bool tiled, GdnMode mode = GdnMode::kAuto) const {
    return {qkv.data() + t0 * stride(),
            stride(),
            alpha.data() + t0 * Hv,
            beta.data() + t0 * Hv,
            a_neg.data(),
            dt_bias.data(),
            0,
            out,
            Hk,
            Hv,
            dk,
            dv,
            tiled,
            mode};
  }
};

}  // namespace flashrt::testing

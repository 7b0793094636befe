// Q4_K and Q6_K: llama.cpp's block layouts, hand-made blocks dequantized by hand, quantization
// error bounds, and byte-for-byte agreement with llama.cpp's reference quantizers on a fixed input.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "core/half.h"
#include "formats/quant.h"

namespace flashrt {
namespace {

// Packs 6-bit scales and mins the way llama.cpp's quantize_row_q4_K_ref does.
void pack_q4_k_scales(const uint8_t sc[8], const uint8_t m[8], uint8_t out[12]) {
  std::memset(out, 0, 12);
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      out[j] = sc[j];
      out[j + 4] = m[j];
    } else {
      out[j + 4] = static_cast<uint8_t>((sc[j] & 0xf) | ((m[j] & 0xf) << 4));
      out[j - 4] |= static_cast<uint8_t>((sc[j] >> 4) << 6);
      out[j] |= static_cast<uint8_t>((m[j] >> 4) << 6);
    }
  }
}

TEST(FormatsQuantK, BlockLayoutsAreLlamaCpps) {
  EXPECT_EQ(sizeof(BlockQ4_K), 144u);
  EXPECT_EQ(offsetof(BlockQ4_K, d), 0u);
  EXPECT_EQ(offsetof(BlockQ4_K, dmin), 2u);
  EXPECT_EQ(offsetof(BlockQ4_K, scales), 4u);
  EXPECT_EQ(offsetof(BlockQ4_K, qs), 16u);
  EXPECT_EQ(sizeof(BlockQ6_K), 210u);
  EXPECT_EQ(offsetof(BlockQ6_K, ql), 0u);
  EXPECT_EQ(offsetof(BlockQ6_K, qh), 128u);
  EXPECT_EQ(offsetof(BlockQ6_K, scales), 192u);
  EXPECT_EQ(offsetof(BlockQ6_K, d), 208u);
  EXPECT_EQ(dtype_info(DType::Q4_K).block_bytes, 144);
  EXPECT_EQ(dtype_info(DType::Q6_K).block_bytes, 210);
  EXPECT_TRUE(can_quantize(DType::Q4_K));
  EXPECT_TRUE(can_quantize(DType::Q6_K));
}

TEST(FormatsQuantK, Q4KScaleMinPackingRoundTrips) {
  std::mt19937 g(1);
  for (int trial = 0; trial < 200; ++trial) {
    uint8_t sc[8], m[8], packed[12];
    for (int j = 0; j < 8; ++j) {
      sc[j] = static_cast<uint8_t>(g() % 64);
      m[j] = static_cast<uint8_t>(g() % 64);
    }
    pack_q4_k_scales(sc, m, packed);
    for (int j = 0; j < 8; ++j) {
      uint8_t s2, m2;
      q4_k_scale_min(packed, j, &s2, &m2);
      ASSERT_EQ(s2, sc[j]);
      ASSERT_EQ(m2, m[j]);
    }
  }
}

TEST(FormatsQuantK, HandMadeQ4KBlockDequantizes) {
  BlockQ4_K b{};
  b.d = f32_to_f16(0.5f);
  b.dmin = f32_to_f16(0.25f);
  uint8_t sc[8], m[8];
  for (int j = 0; j < 8; ++j) {
    sc[j] = static_cast<uint8_t>(j * 8 + 7);  // 6 bits: up to 63
    m[j] = static_cast<uint8_t>(63 - j * 5);
  }
  pack_q4_k_scales(sc, m, b.scales);
  // value e: q = (e * 7) % 16; sub-block e / 32; stored at qs[32 (e / 64) + e % 32], high nibble
  // for the second 32 of each 64
  for (int e = 0; e < 256; ++e) {
    const int q = (e * 7) % 16, byte = 32 * (e / 64) + e % 32;
    b.qs[byte] |= static_cast<uint8_t>((e % 64) < 32 ? q : q << 4);
  }
  std::vector<float> y(256);
  dequantize_row(DType::Q4_K, &b, y.data(), 256);
  for (int e = 0; e < 256; ++e) {
    const int j = e / 32, q = (e * 7) % 16;
    ASSERT_EQ(y[e], 0.5f * sc[j] * q - 0.25f * m[j]) << e;
  }
}

TEST(FormatsQuantK, HandMadeQ6KBlockDequantizes) {
  BlockQ6_K b{};
  b.d = f32_to_f16(0.125f);
  for (int j = 0; j < 16; ++j) b.scales[j] = static_cast<int8_t>(j % 2 ? -(j * 7) : j * 8 - 1);
  // value e in half h = e / 128, l = e % 32, s = (e % 128) / 32: low bits in ql[64h + l + 32 (s &
  // 1)] (nibble s >= 2), high bits 2s..2s+1 of qh[32h + l]
  for (int e = 0; e < 256; ++e) {
    const int q = (e * 11 + 3) % 64, h = e / 128, l = e % 32, s = (e % 128) / 32;
    b.ql[64 * h + l + 32 * (s & 1)] |= static_cast<uint8_t>(s < 2 ? (q & 0xf) : (q & 0xf) << 4);
    b.qh[32 * h + l] |= static_cast<uint8_t>((q >> 4) << (2 * s));
  }
  std::vector<float> y(256);
  dequantize_row(DType::Q6_K, &b, y.data(), 256);
  for (int e = 0; e < 256; ++e) {
    const int q = (e * 11 + 3) % 64;
    ASSERT_EQ(y[e], 0.125f * b.scales[e / 16] * (q - 32)) << e;
  }
}

// A fixed input (integer generator, no library randomness) whose llama.cpp quantizations are
// known: plain, tiny, large and offset super-blocks and an all-zero 32-block.
std::vector<float> golden_input() {
  std::vector<float> x(1024);
  uint32_t s = 12345;
  for (size_t i = 0; i < x.size(); ++i) {
    s = s * 1664525u + 1013904223u;
    const float u = static_cast<float>(s >> 8) / 16777216.0f - 0.5f;
    const float scale = (i / 256 == 1) ? 0.01f : (i / 256 == 2) ? 30.0f : 1.0f;
    x[i] = (i / 32 == 20) ? 0.0f : (i / 256 == 3 ? u + 0.3f : u) * scale;
  }
  return x;
}

uint64_t fnv1a(const std::vector<uint8_t>& v) {
  uint64_t h = 1469598103934665603ull;
  for (uint8_t b : v) {
    h ^= b;
    h *= 1099511628211ull;
  }
  return h;
}

TEST(FormatsQuantK, QuantizersMatchLlamaCppByteForByte) {
  // Hashes of llama.cpp's quantize_row_q4_K_ref / quantize_row_q6_K_ref output for golden_input()
  // (ggml-quants.c compiled from llama.cpp's source tree and run on the same values).
  const auto x = golden_input();
  std::vector<uint8_t> q4(4 * sizeof(BlockQ4_K)), q6(4 * sizeof(BlockQ6_K));
  quantize_row(DType::Q4_K, x.data(), q4.data(), 1024);
  quantize_row(DType::Q6_K, x.data(), q6.data(), 1024);
  EXPECT_EQ(fnv1a(q4), 0xb2c66d999978cff9ull);
  EXPECT_EQ(fnv1a(q6), 0x9a59e23c67bbf2ffull);
}

TEST(FormatsQuantK, QuantizationErrorBounds) {
  std::mt19937 g(7);
  for (DType t : {DType::Q4_K, DType::Q6_K}) {
    double se = 0, sx = 0;
    for (int trial = 0; trial < 50; ++trial) {
      const int n = 512;
      std::normal_distribution<float> nd(trial % 3 == 0 ? 0.3f : 0.0f,
                                         std::pow(10.0f, static_cast<float>(trial % 5) - 2));
      std::vector<float> x(n), y(n);
      for (auto& v : x) v = nd(g);
      std::vector<uint8_t> q(dtype_bytes(t, n));
      quantize_row(t, x.data(), q.data(), n);
      dequantize_row(t, q.data(), y.data(), n);
      double e2 = 0, x2 = 0;
      for (int i = 0; i < n; ++i) {
        e2 += (x[i] - y[i]) * static_cast<double>(x[i] - y[i]);
        x2 += x[i] * static_cast<double>(x[i]);
      }
      se += e2 / x2;
      sx += 1;
      // each value within one quantization step of its sub-block (plus the f16 scale rounding)
      for (int b = 0; b < n / 256; ++b) {
        if (t == DType::Q4_K) {
          const auto* blk = reinterpret_cast<const BlockQ4_K*>(q.data()) + b;
          for (int e = 0; e < 256; ++e) {
            uint8_t sc, m;
            q4_k_scale_min(blk->scales, e / 32, &sc, &m);
            const double step = f16_to_f32(blk->d) * sc, lo = -f16_to_f32(blk->dmin) * m;
            const double v = x[256 * b + e];
            // inside the sub-block's range: half a step; outside it: the nearest end
            const double want = v < lo               ? lo - v
                                : v > lo + 15 * step ? v - (lo + 15 * step)
                                                     : 0.5 * step;
            ASSERT_LE(std::fabs(v - y[256 * b + e]), want * 1.001 + 1e-7)
                << "q4_k trial " << trial << " e=" << e;
          }
        } else {
          const auto* blk = reinterpret_cast<const BlockQ6_K*>(q.data()) + b;
          for (int e = 0; e < 256; ++e) {
            const double ds = static_cast<double>(f16_to_f32(blk->d)) * blk->scales[e / 16];
            const double lo = std::min(-32 * ds, 31 * ds), hi = std::max(-32 * ds, 31 * ds);
            const double v = x[256 * b + e];
            const double want = v < lo ? lo - v : v > hi ? v - hi : 0.5 * std::fabs(ds);
            ASSERT_LE(std::fabs(v - y[256 * b + e]), want * 1.001 + 1e-7)
                << "q6_k trial " << trial << " e=" << e;
          }
        }
      }
    }
    // relative mean squared error of Gaussian data
    const double rel = se / sx;
    if (t == DType::Q4_K)
      EXPECT_LT(rel, 0.01) << "q4_k";
    else
      EXPECT_LT(rel, 0.0008) << "q6_k";
  }
}

TEST(FormatsQuantK, ZeroAndConstantRows) {
  for (DType t : {DType::Q4_K, DType::Q6_K}) {
    std::vector<float> x(256, 0.0f), y(256, 1.0f);
    std::vector<uint8_t> q(dtype_bytes(t, 256));
    quantize_row(t, x.data(), q.data(), 256);
    dequantize_row(t, q.data(), y.data(), 256);
    for (float v : y) EXPECT_EQ(v, 0.0f) << dtype_name(t);
    std::fill(x.begin(), x.end(), 2.5f);
    quantize_row(t, x.data(), q.data(), 256);
    dequantize_row(t, q.data(), y.data(), 256);
    for (float v : y) EXPECT_NEAR(v, 2.5f, 0.02f) << dtype_name(t);
  }
}

TEST(FormatsQuantK, RequantizingADequantizedRowIsClose) {
  // Values that are exactly representable come back within a small fraction of a step.
  std::mt19937 g(3);
  std::normal_distribution<float> nd(0, 1);
  for (DType t : {DType::Q4_K, DType::Q6_K}) {
    std::vector<float> x(768), y(768), z(768);
    for (auto& v : x) v = nd(g);
    std::vector<uint8_t> q(dtype_bytes(t, 768)), q2(q.size());
    quantize_row(t, x.data(), q.data(), 768);
    dequantize_row(t, q.data(), y.data(), 768);
    quantize_row(t, y.data(), q2.data(), 768);
    dequantize_row(t, q2.data(), z.data(), 768);
    double e = 0, n = 0;
    for (int i = 0; i < 768; ++i) {
      e += (y[i] - z[i]) * static_cast<double>(y[i] - z[i]);
      n += y[i] * static_cast<double>(y[i]);
    }
    EXPECT_LT(e / n, t == DType::Q4_K ? 0.004 : 0.0004) << dtype_name(t);
  }
}

}  // namespace
}  // namespace flashrt

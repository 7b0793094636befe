// Number formats: f16/bf16 conversions are exact where they can be and round to nearest even where
// they narrow; Q8_0/Q4_0 blocks have llama.cpp's layout and stay within their error bounds.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "formats/quant.h"

namespace flashrt {
namespace {

using ::testing::HasSubstr;

bool f16_is_nan(uint16_t h) {
  return (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0;
}
bool bf16_is_nan(uint16_t h) {
  return (h & 0x7f80u) == 0x7f80u && (h & 0x7fu) != 0;
}

float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// ---- f16 --------------------------------------------------------------------------------------

TEST(FormatsQuant, F16RoundTripsEveryNonNanPattern) {
  int checked = 0;
  for (uint32_t h = 0; h <= 0xffff; ++h) {
    const auto x = static_cast<uint16_t>(h);
    if (f16_is_nan(x)) continue;
    ASSERT_EQ(f32_to_f16(f16_to_f32(x)), x) << "pattern 0x" << std::hex << h;
    ++checked;
  }
  EXPECT_EQ(checked, 65536 - 2 * 1023);
}

TEST(FormatsQuant, F16KnownValues) {
  EXPECT_EQ(f16_to_f32(0x3c00), 1.0f);
  EXPECT_EQ(f16_to_f32(0xc000), -2.0f);
  EXPECT_EQ(f16_to_f32(0x7bff), 65504.0f);
  EXPECT_EQ(f16_to_f32(0x0400), std::ldexp(1.0f, -14));  // smallest normal
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(f16_to_f32(0x03ff), std::ldexp(1023.0f, -24));
  EXPECT_TRUE(std::signbit(f16_to_f32(0x8000)));
  EXPECT_EQ(f16_to_f32(0x7c00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(f16_to_f32(0xfc00), -std::numeric_limits<float>::infinity());
  EXPECT_EQ(f32_to_f16(0.1f), 0x2e66);  // 0.0999755859375
  EXPECT_EQ(f32_to_f16(-0.0f), 0x8000);
}

// Positive finite f16 values increase with their bit pattern.
TEST(FormatsQuant, F16IsMonotonic) {
  for (uint32_t h = 1; h <= 0x7c00; ++h)
    ASSERT_LT(f16_to_f32(static_cast<uint16_t>(h - 1)), f16_to_f32(static_cast<uint16_t>(h))) << h;
}

// For every pair of neighbouring f16 values (including the largest finite one and infinity), the
// midpoint rounds to the one with an even mantissa, and a hair either side rounds to the nearer.
TEST(FormatsQuant, F16RoundsToNearestEven) {
  for (uint32_t h = 0; h < 0x7c00; ++h) {
    const double lo = f16_to_f32(static_cast<uint16_t>(h));
    // Past 65504 the next step would be 65536: that is where a value rounds to infinity.
    const double hi = h == 0x7bff ? 65536.0 : f16_to_f32(static_cast<uint16_t>(h + 1));
    const auto mid = static_cast<float>((lo + hi) / 2);  // exact: 12 significant bits
    ASSERT_EQ(static_cast<double>(mid), (lo + hi) / 2);
    const uint16_t even = (h & 1) ? static_cast<uint16_t>(h + 1) : static_cast<uint16_t>(h);
    ASSERT_EQ(f32_to_f16(mid), even) << "midpoint above 0x" << std::hex << h;
    ASSERT_EQ(f32_to_f16(-mid), static_cast<uint16_t>(even | 0x8000u))
        << "negative midpoint above 0x" << std::hex << h;
    ASSERT_EQ(f32_to_f16(std::nextafter(mid, 0.0f)), static_cast<uint16_t>(h)) << std::hex << h;
    ASSERT_EQ(f32_to_f16(std::nextafter(mid, 1e9f)), static_cast<uint16_t>(h + 1)) << std::hex << h;
  }
}

TEST(FormatsQuant, F16InfinityNanAndOverflow) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(f32_to_f16(inf), 0x7c00);
  EXPECT_EQ(f32_to_f16(-inf), 0xfc00);
  EXPECT_EQ(f32_to_f16(1e10f), 0x7c00);
  EXPECT_EQ(f32_to_f16(-65520.0f), 0xfc00);
  EXPECT_EQ(f32_to_f16(65519.0f), 0x7bff);
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -26)), 0x0000);  // underflows to zero
  EXPECT_EQ(f32_to_f16(-std::ldexp(1.0f, -26)), 0x8000);
  EXPECT_EQ(f32_to_f16(std::numeric_limits<float>::denorm_min()), 0x0000);
  for (uint32_t bits : {0x7fc00000u, 0x7f800001u, 0xffc00000u, 0x7fffffffu, 0x7f802000u}) {
    const uint16_t h = f32_to_f16(from_bits(bits));
    EXPECT_TRUE(f16_is_nan(h)) << std::hex << bits << " -> " << h;
    EXPECT_EQ(h >> 15u, static_cast<int>(bits >> 31)) << "sign kept";
  }
  for (uint32_t h = 0; h <= 0xffff; ++h) {
    if (f16_is_nan(static_cast<uint16_t>(h))) {
      ASSERT_TRUE(std::isnan(f16_to_f32(static_cast<uint16_t>(h)))) << std::hex << h;
    }
  }
}

// ---- bf16 -------------------------------------------------------------------------------------

TEST(FormatsQuant, Bf16RoundTripsEveryNonNanPattern) {
  for (uint32_t h = 0; h <= 0xffff; ++h) {
    const auto x = static_cast<uint16_t>(h);
    if (bf16_is_nan(x)) {
      ASSERT_TRUE(std::isnan(bf16_to_f32(x)));
      ASSERT_TRUE(bf16_is_nan(f32_to_bf16(bf16_to_f32(x)))) << std::hex << h;
      continue;
    }
    ASSERT_EQ(f32_to_bf16(bf16_to_f32(x)), x) << "pattern 0x" << std::hex << h;
  }
}

TEST(FormatsQuant, Bf16RoundsToNearestEven) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(f32_to_bf16(from_bits(0x3f808000u)), 0x3f80);  // 1 + 2^-8: tie, 0x3f80 is even
  EXPECT_EQ(f32_to_bf16(from_bits(0x3f818000u)), 0x3f82);  // tie above odd 0x3f81 goes up
  EXPECT_EQ(f32_to_bf16(from_bits(0x3f808001u)), 0x3f81);  // just past the tie
  EXPECT_EQ(f32_to_bf16(from_bits(0x3f817fffu)), 0x3f81);  // just before the tie
  EXPECT_EQ(f32_to_bf16(from_bits(0x7f7fffffu)), 0x7f80);  // FLT_MAX rounds to infinity
  EXPECT_EQ(f32_to_bf16(from_bits(0x7f7f7fffu)), 0x7f7f);
  EXPECT_EQ(f32_to_bf16(from_bits(0x00008000u)), 0x0000);  // subnormal tie to even (zero)
  EXPECT_EQ(f32_to_bf16(from_bits(0x00018000u)), 0x0002);
  EXPECT_EQ(f32_to_bf16(-0.0f), 0x8000);
  // All positive finite pairs: ties to even, neighbours of the tie to the nearer value.
  for (uint32_t h = 0; h < 0x7f80; ++h) {
    const uint32_t tie = (h << 16) | 0x8000u;
    const uint16_t even = (h & 1) ? static_cast<uint16_t>(h + 1) : static_cast<uint16_t>(h);
    ASSERT_EQ(f32_to_bf16(from_bits(tie)), even) << std::hex << h;
    ASSERT_EQ(f32_to_bf16(from_bits(tie - 1)), static_cast<uint16_t>(h)) << std::hex << h;
    ASSERT_EQ(f32_to_bf16(from_bits(tie + 1)), static_cast<uint16_t>(h + 1)) << std::hex << h;
  }
}

TEST(FormatsQuant, Bf16InfinityAndNan) {
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::infinity()), 0x7f80);
  EXPECT_EQ(f32_to_bf16(-std::numeric_limits<float>::infinity()), 0xff80);
  // NaNs whose payload lives only in the low 16 bits must not truncate to infinity.
  for (uint32_t bits : {0x7fc00000u, 0x7f800001u, 0xff800001u, 0x7fffffffu}) {
    const uint16_t h = f32_to_bf16(from_bits(bits));
    EXPECT_TRUE(bf16_is_nan(h)) << std::hex << bits << " -> " << h;
    EXPECT_EQ(h >> 15u, static_cast<int>(bits >> 31));
  }
}

// ---- row conversions --------------------------------------------------------------------------

std::vector<float> random_row(std::mt19937& rng, int64_t n, float scale) {
  std::uniform_real_distribution<float> u(-scale, scale);
  std::vector<float> x(static_cast<size_t>(n));
  for (auto& v : x) v = u(rng);
  return x;
}

template <class Block>
std::vector<float> round_trip(DType t, const std::vector<float>& x, std::vector<Block>* blocks) {
  const auto n = static_cast<int64_t>(x.size());
  blocks->assign(x.size() / 32, Block{});
  quantize_row(t, x.data(), blocks->data(), n);
  std::vector<float> y(x.size());
  dequantize_row(t, blocks->data(), y.data(), n);
  return y;
}

// The scale is stored as f16, so on top of the rounding bound (d/2 for Q8_0, d for Q4_0 whose
// most negative quant cannot represent +8d) each of the up to 127 (8) quant steps carries the
// scale's relative f16 error of at most 2^-11 (Q4_0 gets twice that for the clamped end).
TEST(FormatsQuant, Q8_0ErrorWithinHalfAStep) {
  std::mt19937 rng(7);
  for (float scale : {0.1f, 1.0f, 30.0f, 1000.0f}) {
    const auto x = random_row(rng, 32 * 64, scale);
    std::vector<BlockQ8_0> blocks;
    const auto y = round_trip(DType::Q8_0, x, &blocks);
    for (size_t b = 0; b < blocks.size(); ++b) {
      const float d = f16_to_f32(blocks[b].d);
      float amax = 0;
      for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b * 32 + j]));
      EXPECT_NEAR(d, amax / 127, amax / 127 * 0x1p-11f) << "scale of block " << b;
      const float bound = d / 2 + 127 * d * 0x1p-11f;
      for (int j = 0; j < 32; ++j) {
        const size_t i = b * 32 + j;
        ASSERT_LE(std::fabs(x[i] - y[i]), bound) << "scale " << scale << " element " << i;
        ASSERT_GE(blocks[b].qs[j], -127);
      }
    }
  }
}

TEST(FormatsQuant, Q4_0ErrorWithinOneStep) {
  std::mt19937 rng(11);
  for (float scale : {0.1f, 1.0f, 30.0f, 1000.0f}) {
    const auto x = random_row(rng, 32 * 64, scale);
    std::vector<BlockQ4_0> blocks;
    const auto y = round_trip(DType::Q4_0, x, &blocks);
    for (size_t b = 0; b < blocks.size(); ++b) {
      const float d = std::fabs(f16_to_f32(blocks[b].d));
      const float bound = d + 16 * d * 0x1p-11f;
      for (int j = 0; j < 32; ++j) {
        const size_t i = b * 32 + j;
        ASSERT_LE(std::fabs(x[i] - y[i]), bound) << "scale " << scale << " element " << i;
      }
    }
  }
}

// The largest-magnitude value of a block is represented exactly up to the scale's rounding.
TEST(FormatsQuant, BlockExtremesSurvive) {
  std::vector<float> x(32, 0.25f);
  x[5] = -3.0f;
  std::vector<BlockQ4_0> q4;
  auto y = round_trip(DType::Q4_0, x, &q4);
  EXPECT_NEAR(y[5], -3.0f, 3.0f * 0x1p-10f);
  std::vector<BlockQ8_0> q8;
  x[5] = 3.0f;
  y = round_trip(DType::Q8_0, x, &q8);
  EXPECT_NEAR(y[5], 3.0f, 3.0f * 0x1p-10f);
  EXPECT_EQ(q8[0].qs[5], 127);
}

TEST(FormatsQuant, ZeroRowsStayZero) {
  const std::vector<float> x(64, 0.0f);
  std::vector<BlockQ8_0> q8;
  for (float v : round_trip(DType::Q8_0, x, &q8)) EXPECT_EQ(v, 0.0f);
  EXPECT_EQ(q8[0].d, 0);
  std::vector<BlockQ4_0> q4;
  for (float v : round_trip(DType::Q4_0, x, &q4)) EXPECT_EQ(v, 0.0f);
  EXPECT_EQ(f16_to_f32(q4[1].d), 0.0f);  // -0.0: the scale is max / -8
}

// llama.cpp's layouts: Q8_0 is scale then 32 signed bytes; Q4_0 keeps element j in the low nibble
// of byte j and element j+16 in the high nibble, both offset by 8.
TEST(FormatsQuant, BlockLayouts) {
  BlockQ8_0 q8{};
  q8.d = f32_to_f16(0.5f);
  for (int j = 0; j < 32; ++j) q8.qs[j] = static_cast<int8_t>(j * 8 - 128);
  float y[32];
  dequantize_row(DType::Q8_0, &q8, y, 32);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], 0.5f * (j * 8 - 128)) << j;

  BlockQ4_0 q4{};
  q4.d = f32_to_f16(0.5f);
  for (int j = 0; j < 16; ++j) q4.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  dequantize_row(DType::Q4_0, &q4, y, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], 0.5f * (j - 8)) << j;
    EXPECT_EQ(y[j + 16], 0.5f * (7 - j)) << j + 16;
  }
}

TEST(FormatsQuant, PlainTypesConvertElementwise) {
  std::mt19937 rng(3);
  const auto x = random_row(rng, 37, 100.0f);
  std::vector<uint16_t> h(37);
  std::vector<float> y(37);
  quantize_row(DType::F16, x.data(), h.data(), 37);
  dequantize_row(DType::F16, h.data(), y.data(), 37);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(y[i], f16_to_f32(f32_to_f16(x[i])));
  quantize_row(DType::BF16, x.data(), h.data(), 37);
  dequantize_row(DType::BF16, h.data(), y.data(), 37);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(y[i], bf16_to_f32(f32_to_bf16(x[i])));
  std::vector<float> z(37);
  quantize_row(DType::F32, x.data(), z.data(), 37);
  EXPECT_EQ(z, x);
}

TEST(FormatsQuant, RejectsWhatItCannotDo) {
  std::vector<float> x(64);
  std::vector<uint8_t> out(1024);
  auto message = [](auto&& f) -> std::string {
    try {
      f();
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  };
  EXPECT_THAT(message([&] { quantize_row(DType::Q8_0, x.data(), out.data(), 33); }),
              HasSubstr("cannot store a row of 33 values as q8_0 (block size 32)"));
  EXPECT_THAT(message([&] { quantize_row(DType::I32, x.data(), out.data(), 4); }),
              HasSubstr("cannot quantize to i32"));
  EXPECT_THAT(message([&] { dequantize_row(DType::I32, out.data(), x.data(), 4); }),
              HasSubstr("cannot convert i32 to f32"));
  EXPECT_TRUE(can_quantize(DType::Q4_0));
  EXPECT_FALSE(can_quantize(DType::I64));
}

}  // namespace
}  // namespace flashrt

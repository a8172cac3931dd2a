#include "core/kvcomp/dtype.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "tests/core/float_bits.h"

namespace kvcomp {
namespace {

using test_bits::Bits;
using test_bits::FromBits;

TEST(HalfTest, EveryHalfRoundTripsThroughFloat) {
  for (uint32_t h = 0; h <= 0xffff; ++h) {
    const float f = HalfBitsToFloat(static_cast<uint16_t>(h));
    const uint16_t back = FloatToHalfBits(f);
    const bool is_nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
    if (is_nan) {
      EXPECT_TRUE(std::isnan(f)) << h;
      // Quiet NaNs keep their payload exactly; signalling ones come back quieted.
      EXPECT_EQ(back, h | 0x0200) << h;
    } else {
      EXPECT_EQ(back, h) << h;
    }
  }
}

TEST(HalfTest, SpecialValues) {
  EXPECT_EQ(FloatToHalfBits(0.0f), 0x0000);
  EXPECT_EQ(FloatToHalfBits(-0.0f), 0x8000);
  EXPECT_EQ(FloatToHalfBits(std::numeric_limits<float>::infinity()), 0x7c00);
  EXPECT_EQ(FloatToHalfBits(-std::numeric_limits<float>::infinity()), 0xfc00);
  EXPECT_EQ(FloatToHalfBits(65504.0f), 0x7bff);
  EXPECT_EQ(FloatToHalfBits(65519.99f), 0x7bff);  // below the tie: rounds down
  EXPECT_EQ(FloatToHalfBits(65520.0f), 0x7c00);   // tie to even: overflows to infinity
  EXPECT_EQ(FloatToHalfBits(1e10f), 0x7c00);
  EXPECT_EQ(FloatToHalfBits(5.9604644775390625e-8f), 0x0001);    // smallest subnormal
  EXPECT_EQ(FloatToHalfBits(2.98023223876953125e-8f), 0x0000);   // half of it: tie to even 0
  EXPECT_EQ(FloatToHalfBits(2.9802326e-8f), 0x0001);             // just above the tie
  EXPECT_EQ(FloatToHalfBits(-2.98023223876953125e-8f), 0x8000);  // signed zero kept
  EXPECT_EQ(FloatToHalfBits(6.103515625e-5f), 0x0400);           // smallest normal
  EXPECT_EQ(FloatToHalfBits(1.0f + 1.0f / 2048), 0x3c00);        // tie, even stays
  EXPECT_EQ(FloatToHalfBits(1.0f + 3.0f / 2048), 0x3c02);        // tie, odd rounds up
  // NaN payload: top bits survive, quiet bit set.
  EXPECT_EQ(FloatToHalfBits(FromBits(0x7fc00000u | (0x155u << 13))), 0x7e00 | 0x155);
  EXPECT_EQ(FloatToHalfBits(FromBits(0xff800001u)), 0xfe00);  // signalling, low payload only
}

// Reference: round to nearest even through double, where every float is exact.
uint16_t ReferenceHalf(float f) {
  if (std::isnan(f)) return FloatToHalfBits(f);
  const uint16_t sign = std::signbit(f) ? 0x8000 : 0;
  double a = std::fabs(static_cast<double>(f));
  if (a >= 65520.0) return sign | 0x7c00;
  // Scale so one half ulp is 1.0 for the binade of `a`, then round half to even.
  int exp = a == 0 ? -25 : std::ilogb(a);
  if (exp < -14) exp = -14;
  const double ulp = std::ldexp(1.0, exp - 10);
  const double q = std::nearbyint(a / ulp);  // default rounding mode: ties to even
  const double r = q * ulp;
  // Re-encode r exactly.
  if (r == 0) return sign;
  int e = std::ilogb(r);
  if (e < -14) return sign | static_cast<uint16_t>(r / std::ldexp(1.0, -24));
  const uint16_t mant = static_cast<uint16_t>(r / std::ldexp(1.0, e - 10)) & 0x3ff;
  return sign | static_cast<uint16_t>((e + 15) << 10) | mant;
}

TEST(HalfTest, RandomFloatsMatchReference) {
  std::mt19937 rng(7);
  for (int i = 0; i < 2000000; ++i) {
    uint32_t u = rng();
    // Bias toward the half range so most cases are interesting.
    if (i % 2) u = (u & 0x807fffffu) | ((100u + rng() % 45u) << 23);
    const float f = FromBits(u);
    ASSERT_EQ(FloatToHalfBits(f), ReferenceHalf(f)) << std::hex << u;
  }
}

TEST(HalfTest, BulkPathMatchesScalar) {
  std::mt19937 rng(11);
  std::vector<float> in(10007);
  for (auto& f : in) f = FromBits((rng() & 0x807fffffu) | ((96u + rng() % 50u) << 23));
  in[3] = std::nanf("1");
  in[9] = -0.0f;
  std::vector<uint16_t> bulk(in.size());
  FloatToHalf(in.data(), bulk.data(), in.size());
  for (size_t i = 0; i < in.size(); ++i) ASSERT_EQ(bulk[i], FloatToHalfBits(in[i])) << i;
  std::vector<float> wide(in.size());
  HalfToFloat(bulk.data(), wide.data(), bulk.size());
  for (size_t i = 0; i < in.size(); ++i) {
    ASSERT_EQ(Bits(wide[i]), Bits(HalfBitsToFloat(bulk[i]))) << i;
  }
}

TEST(Bf16Test, EveryBf16RoundTripsThroughFloat) {
  for (uint32_t h = 0; h <= 0xffff; ++h) {
    const float f = Bf16BitsToFloat(static_cast<uint16_t>(h));
    const bool is_nan = (h & 0x7f80) == 0x7f80 && (h & 0x7f);
    EXPECT_EQ(FloatToBf16Bits(f), is_nan ? (h | 0x40) : h) << h;
  }
}

TEST(Bf16Test, RoundsToNearestEven) {
  EXPECT_EQ(FloatToBf16Bits(FromBits(0x3f808000u)), 0x3f80);  // tie, even stays
  EXPECT_EQ(FloatToBf16Bits(FromBits(0x3f818000u)), 0x3f82);  // tie, odd rounds up
  EXPECT_EQ(FloatToBf16Bits(FromBits(0x3f808001u)), 0x3f81);  // above tie
  EXPECT_EQ(FloatToBf16Bits(FromBits(0x7f7fffffu)), 0x7f80);  // max float rounds to inf
  EXPECT_EQ(FloatToBf16Bits(-0.0f), 0x8000);
  EXPECT_EQ(FloatToBf16Bits(FromBits(0x00000001u)), 0x0000);  // tiny subnormal
  EXPECT_EQ(FloatToBf16Bits(FromBits(0x00018000u)), 0x0002);  // subnormal tie to even
}

TEST(DTypeTest, NamesParse) {
  EXPECT_EQ(*ParseDType("FP16"), DType::kFP16);
  EXPECT_EQ(*ParseDType("bf16"), DType::kBF16);
  EXPECT_EQ(*ParseDType("FP32"), DType::kFP32);
  auto bad = ParseDType("INT8");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("INT8"), std::string::npos);
}

}  // namespace
}  // namespace kvcomp

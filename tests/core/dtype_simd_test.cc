// Each SIMD path of the FP16 conversions (F16C on x86-64, NEON on AArch64) against the scalar
// reference, bit for bit: every half pattern, every rounding boundary of every half, NaN
// payloads, random bit patterns, and every length and misalignment of the scalar tail.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/kvcomp/dtype.h"
#include "core/kvcomp/internal/dtype_simd.h"
#include "tests/core/float_bits.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace kvcomp {
namespace {

using dtype_internal::FloatToHalfScalar;
using dtype_internal::FloatToHalfSimd;
using dtype_internal::HalfSimdPath;
using dtype_internal::HalfToFloatScalar;
using dtype_internal::HalfToFloatSimd;

using test_bits::Bits;
using test_bits::FromBits;

bool HaveSimd() { return HalfSimdPath()[0] != '\0'; }

// What the SIMD functions must cover: whole blocks of 8, or nothing without a SIMD path.
size_t SimdPrefix(size_t count) { return HaveSimd() ? count / 8 * 8 : 0; }

// Narrows `in` with the SIMD path and the scalar reference and compares every element.
void ExpectNarrowsLikeScalar(const std::vector<float>& in) {
  std::vector<uint16_t> simd(in.size(), 0xdead), scalar(in.size());
  ASSERT_EQ(FloatToHalfSimd(in.data(), simd.data(), in.size()), SimdPrefix(in.size()));
  FloatToHalfScalar(in.data(), scalar.data(), in.size());
  for (size_t i = 0; i < SimdPrefix(in.size()); ++i) {
    ASSERT_EQ(simd[i], scalar[i]) << HalfSimdPath() << ": float bits 0x" << std::hex << Bits(in[i]);
  }
}

TEST(HalfSimdTest, PathIsPresentWhereTheHardwareHasIt) {
#if defined(__aarch64__)
  EXPECT_STREQ(HalfSimdPath(), "neon");
#elif defined(__x86_64__) || defined(__i386__)
  unsigned a, b, c, d;
  const bool f16c =
      __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C) && (c & bit_AVX) && (c & bit_OSXSAVE);
  EXPECT_STREQ(HalfSimdPath(), f16c ? "f16c" : "");
#else
  EXPECT_STREQ(HalfSimdPath(), "");
#endif
}

TEST(HalfSimdTest, EveryHalfWidensLikeScalar) {
  std::vector<uint16_t> in(0x10000);
  for (uint32_t h = 0; h <= 0xffff; ++h) in[h] = static_cast<uint16_t>(h);
  std::vector<float> simd(in.size()), scalar(in.size());
  ASSERT_EQ(HalfToFloatSimd(in.data(), simd.data(), in.size()), SimdPrefix(in.size()));
  HalfToFloatScalar(in.data(), scalar.data(), in.size());
  for (size_t i = 0; i < SimdPrefix(in.size()); ++i) {
    ASSERT_EQ(Bits(simd[i]), Bits(scalar[i])) << HalfSimdPath() << ": half 0x" << std::hex << in[i];
  }
}

TEST(HalfSimdTest, EveryHalfRoundingBoundaryNarrowsLikeScalar) {
  // For each non-negative finite half and its successor: the half itself, the midpoint (a tie,
  // decided by evenness), and the floats one ulp either side of it; both signs.
  std::vector<float> in;
  for (uint32_t h = 0; h < 0x7c00; ++h) {
    const float lo = HalfBitsToFloat(static_cast<uint16_t>(h));
    const float hi = h + 1 < 0x7c00 ? HalfBitsToFloat(static_cast<uint16_t>(h + 1)) : 65536.0f;
    const float mid = static_cast<float>((static_cast<double>(lo) + hi) / 2);  // exact
    for (float f : {lo, mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1e30f)}) {
      in.push_back(f);
      in.push_back(-f);
    }
  }
  ExpectNarrowsLikeScalar(in);
}

TEST(HalfSimdTest, SpecialFloatsNarrowLikeScalar) {
  std::vector<float> in = {0.0f,
                           -0.0f,
                           INFINITY,
                           -INFINITY,
                           65504.0f,
                           65519.99f,
                           65520.0f,
                           1e10f,
                           FromBits(1),
                           FromBits(0x80000001u),
                           FromBits(0x7f7fffffu),
                           FromBits(0x387fe000u),
                           FromBits(0x387fffffu)};
  // NaNs: both signs, quiet and signalling, every value of the payload bits a half keeps, and
  // low payload bits that must be dropped.
  for (uint32_t sign : {0u, 0x80000000u}) {
    for (uint32_t quiet : {0u, 0x400000u}) {
      for (uint32_t top = 0; top < 0x200; ++top) {
        for (uint32_t low : {0u, 1u, 0x1fffu}) {
          const uint32_t payload = quiet | (top << 13) | low;
          if (payload != 0) in.push_back(FromBits(sign | 0x7f800000u | payload));
        }
      }
    }
  }
  while (in.size() % 8) in.push_back(1.0f);
  ExpectNarrowsLikeScalar(in);
}

TEST(HalfSimdTest, RandomBitPatternsNarrowLikeScalar) {
  std::mt19937 rng(23);
  std::vector<float> in(1 << 20);
  for (size_t i = 0; i < in.size(); ++i) {
    uint32_t u = rng();
    // Half of them in and around the half range, the rest anywhere (NaNs, huge, tiny).
    if (i % 2) u = (u & 0x807fffffu) | ((98u + rng() % 48u) << 23);
    in[i] = FromBits(u);
  }
  ExpectNarrowsLikeScalar(in);
}

TEST(HalfSimdTest, PublicBulkFunctionsMatchScalarAtEveryLengthAndAlignment) {
  std::mt19937 rng(5);
  std::vector<float> f(64 + 3);
  std::vector<uint16_t> h(64 + 3);
  for (auto& x : f) x = FromBits((rng() & 0x807fffffu) | ((100u + rng() % 44u) << 23));
  for (auto& x : h) x = static_cast<uint16_t>(rng());
  for (size_t offset = 0; offset < 3; ++offset) {
    for (size_t n = 0; n <= 64; ++n) {
      std::vector<uint16_t> narrow(n + 1, 0xbeef), narrow_ref(n + 1, 0xbeef);
      FloatToHalf(f.data() + offset, narrow.data(), n);
      FloatToHalfScalar(f.data() + offset, narrow_ref.data(), n);
      ASSERT_EQ(narrow, narrow_ref) << "offset " << offset << " n " << n;
      std::vector<float> wide(n + 1, -7.0f), wide_ref(n + 1, -7.0f);
      HalfToFloat(h.data() + offset, wide.data(), n);
      HalfToFloatScalar(h.data() + offset, wide_ref.data(), n);
      ASSERT_EQ(std::memcmp(wide.data(), wide_ref.data(), wide.size() * 4), 0)
          << "offset " << offset << " n " << n;
    }
  }
}

TEST(HalfSimdTest, ToFloatIfFiniteWidensExactlyAndFindsEveryNonFiniteValue) {
  // Every length to 40 at odd byte offsets, every dtype: the same floats as ToFloat when all are
  // finite, and false as soon as one NaN or infinity sits anywhere, in a SIMD block or the tail.
  std::mt19937 rng(9);
  for (DType dtype : {DType::kFP16, DType::kBF16, DType::kFP32}) {
    const size_t es = DTypeSize(dtype);
    for (size_t n = 0; n <= 40; ++n) {
      std::vector<uint8_t> bytes(n * es + 1);
      for (size_t i = 0; i < n; ++i) {
        const uint32_t finite = es == 2 ? (rng() & 0x83ffu) | ((rng() % 30u) << 10)
                                        : (rng() & 0x807fffffu) | ((1u + rng() % 250u) << 23);
        const uint32_t bits =
            dtype == DType::kBF16 ? (rng() & 0x807fu) | ((1u + rng() % 250u) << 7) : finite;
        std::memcpy(bytes.data() + 1 + i * es, &bits, es);
      }
      const uint8_t* in = bytes.data() + 1;  // unaligned on purpose
      // One spare float each, so that n = 0 still has buffers (memcmp may not see null).
      std::vector<float> got(n + 1), want(n + 1);
      ASSERT_TRUE(ToFloatIfFinite(dtype, in, got.data(), n)) << DTypeName(dtype) << " n " << n;
      ToFloat(dtype, in, want.data(), n);
      ASSERT_EQ(std::memcmp(got.data(), want.data(), n * 4), 0) << DTypeName(dtype) << " n " << n;
      for (size_t at = 0; at < n; at += 7) {
        std::vector<uint8_t> bad = bytes;
        const uint32_t inf = dtype == DType::kFP16   ? 0xfc00u
                             : dtype == DType::kBF16 ? 0x7fc1u
                                                     : 0x7f800000u;
        std::memcpy(bad.data() + 1 + at * es, &inf, es);
        EXPECT_FALSE(ToFloatIfFinite(dtype, bad.data() + 1, got.data(), n))
            << DTypeName(dtype) << " n " << n << " at " << at;
      }
    }
  }
}

}  // namespace
}  // namespace kvcomp

#include <gtest/gtest.h>

#include "tests/core/lossless_test_util.h"

namespace kvcomp {
namespace {

TEST(RansStageTest, BitExactEverywhere) {
  testing::ExpectLosslessEverywhere("rans");
  testing::ExpectLosslessEverywhere("gear+rans");
  testing::ExpectLosslessEverywhere("planes+rans");
}

TEST(RansStageTest, RealCachesRoundTrip) {
  // Measured on ../shared/kv FP16, frames counted: rans 1.163, gear+rans 1.178.
  testing::ExpectRealKvRoundTrips("rans", 1.155);
  testing::ExpectRealKvRoundTrips("gear+rans", 1.17);
}

uint64_t TotalFrameBytes(const std::string& spec) {
  auto codec = MakeCodec(spec);
  EXPECT_TRUE(codec.ok()) << codec.status();
  if (!codec.ok()) return 0;
  uint64_t total = 0;
  for (const auto& t : testing::LoadSharedKv(DType::kFP16)) {
    auto out = (*codec)->Compress(t.tensor.view());
    EXPECT_TRUE(out.ok()) << out.status();
    if (out.ok()) total += out->frame.size();
  }
  return total;
}

TEST(RansStageTest, GearRansBeatsGearHuffOnRealKv) {
  if (!testing::HaveSharedKv()) GTEST_SKIP() << "../shared/kv is absent";
  // Whole frames (headers and every table counted) over all the real caches; measured
  // 1,103,128 vs 1,124,916 bytes (KV ratio 1.178 vs 1.155).
  const uint64_t rans = TotalFrameBytes("gear+rans"), huff = TotalFrameBytes("gear+huff");
  EXPECT_LT(rans, huff);
  EXPECT_LT(static_cast<double>(rans), 0.99 * static_cast<double>(huff));
}

TEST(RansStageTest, ChannelContextPays) {
  // Two channels with disjoint exponents: per-channel tables code the top byte in ~0 bits.
  Tensor t = testing::RandomBitsTensor(DType::kFP16, {1, 4000, 2}, 3);
  for (size_t i = 0; i < t.bytes.size() / 2; ++i) {
    t.bytes[2 * i + 1] = (i % 2 ? 0x3c : 0x48) | (t.bytes[2 * i] & 1);
  }
  auto out = MakeCodec("rans").value()->Compress(t.view());
  ASSERT_TRUE(out.ok());
  EXPECT_LT(out->frame.size(), 8000u + 1000u + 200u);  // 8000 raw low bytes, ~1 bit top byte
  testing::ExpectRoundTrip("rans", t, "two channels");
}

TEST(RansStageTest, LowByteConditionedOnTopByte) {
  // The low byte is a function of the top byte: the top-byte context makes it nearly free.
  Tensor t = testing::RandomBitsTensor(DType::kFP16, {2, 3000, 4}, 5);
  for (size_t i = 0; i < t.bytes.size() / 2; ++i) {
    const uint8_t hi = 0x30 + (t.bytes[2 * i + 1] & 0x1c);
    t.bytes[2 * i + 1] = hi;
    t.bytes[2 * i] = static_cast<uint8_t>(hi * 37 + (t.bytes[2 * i] & 1));
  }
  auto out = MakeCodec("rans").value()->Compress(t.view());
  ASSERT_TRUE(out.ok());
  // 24000 elements: top byte 3 bits, low byte 1 bit -> ~12000 bytes.
  EXPECT_LT(out->frame.size(), 13000u);
  testing::ExpectRoundTrip("rans", t, "low byte follows top byte");
}

TEST(RansStageTest, LargeSkewedPlanes) {
  Tensor t = testing::RandomBitsTensor(DType::kFP16, {4, 40000, 2}, 8);
  for (size_t i = 1; i < t.bytes.size(); i += 2) t.bytes[i] = 0x3c + (t.bytes[i] % 5 == 0);
  testing::ExpectRoundTrip("rans", t, "skewed large");
  testing::ExpectRoundTrip("gear+rans", t, "skewed large");
  auto out = MakeCodec("rans").value()->Compress(t.view());
  EXPECT_LT(out->frame.size(), t.bytes.size() * 6 / 10);
}

TEST(RansStageTest, CorruptionIsSafe) {
  testing::ExpectCorruptionIsSafe("rans", testing::SpecialsTensor(DType::kFP16, {2, 200, 8}, 3));
  testing::ExpectCorruptionIsSafe("gear+rans",
                                  testing::SpecialsTensor(DType::kBF16, {2, 100, 8}, 4));
  testing::ExpectCorruptionIsSafe("rans", testing::SpecialsTensor(DType::kFP32, {3, 50, 4}, 5));
  if (testing::HaveSharedKv()) {
    const auto kv = testing::LoadSharedKv(DType::kFP16);
    testing::ExpectCorruptionIsSafe("rans", kv[0].tensor);
    testing::ExpectCorruptionIsSafe("gear+rans", kv[1].tensor);
  }
}

}  // namespace
}  // namespace kvcomp

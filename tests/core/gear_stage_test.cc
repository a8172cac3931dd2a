#include <gtest/gtest.h>

#include "tests/core/lossless_test_util.h"

namespace kvcomp {
namespace {

TEST(GearStageTest, BitExactEverywhere) {
  testing::ExpectLosslessEverywhere("gear+zstd(1)");
  testing::ExpectLosslessEverywhere("gear+huff");
}

TEST(GearStageTest, SplitsSignExponentFromMantissa) {
  auto stage = StageRegistry::Get().Create(ParseSpec("gear").value()[0]);
  ASSERT_TRUE(stage.ok());
  const uint16_t w = 0xbc01;  // -1.0009765625: sign 1, exponent 01111, mantissa 0000000001
  std::vector<uint8_t> bytes(2);
  std::memcpy(bytes.data(), &w, 2);
  Streams in;
  in.push_back(Stream::Borrow(StreamDesc{ElemType::kF16, Geometry{1, 1, 1}}, bytes));
  Streams out;
  ASSERT_TRUE((*stage)->Encode(in, &out).ok());
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].data()[0], 0x2f);  // 1 01111
  uint16_t m;
  std::memcpy(&m, out[1].data().data(), 2);
  EXPECT_EQ(m, 1);
}

TEST(GearStageTest, RejectsOverwideFields) {
  auto stage = StageRegistry::Get().Create(ParseSpec("gear").value()[0]);
  ASSERT_TRUE(stage.ok());
  const StreamDesc want{ElemType::kF16, Geometry{1, 1, 1}};
  std::vector<uint8_t> hi = {0x40};  // 7 bits: too wide for sign+exp of FP16
  std::vector<uint8_t> lo = {0x00, 0x00};
  Streams enc;
  enc.push_back(Stream::Own(StreamDesc{ElemType::kU8, want.geom}, hi));
  enc.push_back(Stream::Own(StreamDesc{ElemType::kU16, want.geom}, lo));
  Streams dec;
  EXPECT_EQ((*stage)->Decode(enc, {&want, 1}, &dec).code(), absl::StatusCode::kDataLoss);
}

TEST(GearStageTest, CorruptionIsSafe) {
  testing::ExpectCorruptionIsSafe("gear", testing::SpecialsTensor(DType::kBF16, {2, 50, 8}, 3),
                                  /*expect_rejections=*/false);
}

}  // namespace
}  // namespace kvcomp

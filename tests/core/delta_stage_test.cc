#include <gtest/gtest.h>

#include "tests/core/lossless_test_util.h"

namespace kvcomp {
namespace {

TEST(DeltaStageTest, BitExactEverywhere) {
  testing::ExpectLosslessEverywhere("delta+huff");
  testing::ExpectLosslessEverywhere("xor+zstd(1)");
  testing::ExpectLosslessEverywhere("gear+delta+zstd(1)");  // the seed's gear+delta
  testing::ExpectLosslessEverywhere("dedupe+xor+huff");
}

TEST(DeltaStageTest, DifferencesAlongTokensPerChannel) {
  auto stage = StageRegistry::Get().Create(ParseSpec("delta").value()[0]);
  ASSERT_TRUE(stage.ok());
  // One plane, 3 tokens x 2 channels of u16: rows {1,10}, {4,7}, {4,65535}.
  const std::vector<uint16_t> w = {1, 10, 4, 7, 4, 65535};
  std::vector<uint8_t> bytes(12);
  std::memcpy(bytes.data(), w.data(), 12);
  const StreamDesc d{ElemType::kF16, Geometry{1, 3, 2}};
  Streams in;
  in.push_back(Stream::Borrow(d, bytes));
  Streams out;
  ASSERT_TRUE((*stage)->Encode(in, &out).ok());
  std::vector<uint16_t> got(6);
  std::memcpy(got.data(), out[0].data().data(), 12);
  EXPECT_EQ(got, (std::vector<uint16_t>{1, 10, 3, 65533, 0, 65528}));
}

TEST(DeltaStageTest, CorruptionIsSafe) {
  testing::ExpectCorruptionIsSafe("xor", testing::SpecialsTensor(DType::kFP16, {2, 50, 8}, 3),
                                  /*expect_rejections=*/false);
  testing::ExpectCorruptionIsSafe("delta+huff",
                                  testing::SpecialsTensor(DType::kFP32, {2, 50, 8}, 4));
}

}  // namespace
}  // namespace kvcomp

#include <gtest/gtest.h>

#include "tests/core/lossless_test_util.h"

namespace kvcomp {
namespace {

TEST(PlanesStageTest, BitExactEverywhere) {
  testing::ExpectLosslessEverywhere("planes+zstd(1)");
  testing::ExpectLosslessEverywhere("planes+huff");
}

TEST(PlanesStageTest, SplitsMostSignificantByteFirst) {
  auto stage = StageRegistry::Get().Create(*ParseSpec("planes").value().begin());
  ASSERT_TRUE(stage.ok());
  const std::vector<uint8_t> words = {0x34, 0x12, 0x78, 0x56};  // FP16 0x1234, 0x5678
  const StreamDesc d{ElemType::kF16, Geometry{1, 2, 1}};
  Streams in;
  in.push_back(Stream::Borrow(d, words));
  Streams out;
  ASSERT_TRUE((*stage)->Encode(in, &out).ok());
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(std::vector<uint8_t>(out[0].data().begin(), out[0].data().end()),
            (std::vector<uint8_t>{0x12, 0x56}));
  EXPECT_EQ(std::vector<uint8_t>(out[1].data().begin(), out[1].data().end()),
            (std::vector<uint8_t>{0x34, 0x78}));
}

TEST(PlanesStageTest, CorruptionIsSafe) {
  testing::ExpectCorruptionIsSafe("planes", testing::SpecialsTensor(DType::kFP32, {2, 50, 8}, 3),
                                  /*expect_rejections=*/false);
}

}  // namespace
}  // namespace kvcomp

#include <gtest/gtest.h>

#include "tests/core/lossless_test_util.h"

namespace kvcomp {
namespace {

TEST(CmStageTest, BitExactEverywhere) {
  testing::ExpectLosslessEverywhere("cm");
  testing::ExpectLosslessEverywhere("dedupe+cm(5)");
  testing::ExpectLosslessEverywhere("gear+cm");
}

TEST(CmStageTest, RealCachesReachTheIssueTarget) {
  // docs/BENCHMARKS.md: dedupe+cm gives KV 1.318 on ../shared/kv FP16, frames counted.
  testing::ExpectRealKvRoundTrips("dedupe+cm", 1.30);
}

TEST(CmStageTest, LearnsChannelContext) {
  // Two channels with disjoint exponents: cm must code the top byte in well under 1 bit per
  // element once it has learnt them; order-0 Huffman needs at least 1.
  Tensor t = testing::RandomBitsTensor(DType::kFP16, {1, 4000, 2}, 3);
  for (size_t i = 0; i < t.bytes.size() / 2; ++i) t.bytes[2 * i + 1] = i % 2 ? 0x3c : 0x48;
  auto cm = MakeCodec("cm").value()->Compress(t.view());
  ASSERT_TRUE(cm.ok());
  EXPECT_LT(cm->frame.size(), 8000u + 200u);  // 8000 raw low bytes + a small coded section
  testing::ExpectRoundTrip("cm", t, "two channels");
}

TEST(CmStageTest, CorruptionIsSafe) {
  testing::ExpectCorruptionIsSafe("cm", testing::SpecialsTensor(DType::kFP16, {2, 100, 8}, 3));
  if (testing::HaveSharedKv()) {
    testing::ExpectCorruptionIsSafe("cm", testing::LoadSharedKv(DType::kFP16)[1].tensor, true, 60);
  }
}

}  // namespace
}  // namespace kvcomp

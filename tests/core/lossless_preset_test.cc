#include <gtest/gtest.h>

#include "tests/core/lossless_test_util.h"

namespace kvcomp {
namespace {

TEST(LosslessPresetTest, BitExactEverywhere) {
  testing::ExpectLosslessEverywhere("lossless");
  testing::ExpectLosslessEverywhere("lossless-max");
}

TEST(LosslessPresetTest, BeatsEveryPeerOnRealCaches) {
  // Best peer in issue 3's table without planes: blosc shuffle+zstd, KV 1.165.
  testing::ExpectRealKvRoundTrips("lossless", 1.165);
}

TEST(LosslessPresetTest, MaxIsAtLeastAsGoodAsDefault) {
  if (!testing::HaveSharedKv()) GTEST_SKIP();
  auto fast = MakeCodec("lossless").value();
  auto max = MakeCodec("lossless-max").value();
  for (const auto& t : testing::LoadSharedKv(DType::kFP16)) {
    auto a = fast->Compress(t.tensor.view());
    auto b = max->Compress(t.tensor.view());
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_LE(b->frame.size(), a->frame.size()) << t.name;
  }
}

TEST(LosslessPresetTest, RecordsTheChosenPipeline) {
  if (!testing::HaveSharedKv()) GTEST_SKIP();
  // Layer 0 V repeats rows: the sample must pick dedupe; layer 1 K does not.
  for (const auto& t : testing::LoadSharedKv(DType::kFP16)) {
    if (t.name != "story_prose/layer0_v.f16" && t.name != "story_prose/layer1_k.f16") continue;
    auto out = MakeCodec("lossless").value()->Compress(t.tensor.view());
    ASSERT_TRUE(out.ok());
    EXPECT_EQ(out->report.spec, t.tensor.meta.layer == 0 ? "dedupe+huff" : "huff") << t.name;
  }
}

TEST(LosslessPresetTest, TakesNoArguments) {
  EXPECT_FALSE(MakeCodec("lossless(3)").ok());
  EXPECT_FALSE(MakeCodec("lossless-max(fast)").ok());
}

}  // namespace
}  // namespace kvcomp

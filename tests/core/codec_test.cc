#include "core/kvcomp/codec.h"

#include <gtest/gtest.h>

#include "tests/core/test_data.h"

namespace kvcomp {
namespace {

TEST(CodecTest, ZstdIsBitExactOnEverySharedKvTensor) {
  if (!testing::HaveSharedKv()) GTEST_SKIP() << "../shared/kv is absent";
  auto codec = MakeCodec("zstd(3)");
  ASSERT_TRUE(codec.ok());
  for (DType dtype : {DType::kFP16, DType::kFP32}) {
    const auto tensors = testing::LoadSharedKv(dtype);
    ASSERT_EQ(tensors.size(), 40u);
    for (const auto& t : tensors) {
      auto out = (*codec)->Compress(t.tensor.view());
      ASSERT_TRUE(out.ok()) << t.name << ": " << out.status();
      EXPECT_EQ(out->report.compressed_bytes, out->frame.size());
      EXPECT_EQ(out->report.raw_bytes, t.tensor.bytes.size());
      EXPECT_TRUE(out->report.lossless);
      EXPECT_GT(out->report.ratio(), 1.0) << t.name;
      auto back = Decompress(out->frame);
      ASSERT_TRUE(back.ok()) << back.status();
      EXPECT_EQ(back->bytes, t.tensor.bytes) << t.name;
      EXPECT_EQ(back->meta.layer, t.tensor.meta.layer);
      EXPECT_EQ(back->meta.kind, t.tensor.meta.kind);
    }
  }
}

TEST(CodecTest, EdgeShapesRoundTrip) {
  auto codec = MakeCodec("zstd(1)");
  const std::vector<std::vector<int64_t>> shapes = {{0}, {4, 0, 8},    {1, 1, 1},  {3, 1, 7},
                                                    {5}, {2, 3, 5, 7}, {1, 513, 3}};
  for (DType dtype : {DType::kFP16, DType::kBF16, DType::kFP32}) {
    for (Layout layout : {Layout::kHeadMajor, Layout::kTokenMajor}) {
      for (const auto& shape : shapes) {
        if (layout == Layout::kTokenMajor && shape.size() < 2) continue;
        Tensor t = testing::RandomBitsTensor(dtype, shape, 42, layout);
        auto out = (*codec)->Compress(t.view());
        ASSERT_TRUE(out.ok()) << out.status();
        auto back = Decompress(out->frame);
        ASSERT_TRUE(back.ok()) << back.status();
        EXPECT_EQ(back->bytes, t.bytes);
        EXPECT_EQ(back->meta.shape, t.meta.shape);
        EXPECT_EQ(back->meta.layout, layout);
      }
    }
  }
}

TEST(CodecTest, WrongByteCountNamesBothSizes) {
  TensorMeta meta;
  meta.shape = {4, 10, 8};
  std::vector<uint8_t> bytes(100);
  auto view = TensorView::Make(meta, bytes);
  ASSERT_FALSE(view.ok());
  EXPECT_EQ(view.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(view.status().message().find("100"), std::string::npos);
  EXPECT_NE(view.status().message().find("640"), std::string::npos);
}

}  // namespace
}  // namespace kvcomp

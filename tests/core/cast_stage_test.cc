#include <gtest/gtest.h>

#include <cmath>

#include "tests/core/lossless_test_util.h"

namespace kvcomp {
namespace {

// cast is a lossy stage by declaration; on its own target type it must still be exact, and
// the report must say so (no error stats, lossless).
void ExpectRoundTripExact(const char* spec, const Tensor& t) {
  auto out = MakeCodec(spec).value()->Compress(t.view());
  ASSERT_TRUE(out.ok()) << out.status();
  auto back = Decompress(out->frame);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(back->bytes == t.bytes) << spec;
  EXPECT_TRUE(out->report.lossless) << spec;
  EXPECT_FALSE(out->report.error.has_value()) << spec;
}

TEST(CastStageTest, ExactOnTheTargetType) {
  for (const char* spec : {"cast+huff", "cast(fp16)+zstd(1)"}) {
    ExpectRoundTripExact(spec, testing::SpecialsTensor(DType::kFP16, {2, 33, 8}, 1));
  }
  ExpectRoundTripExact("cast(bf16)+huff", testing::SpecialsTensor(DType::kBF16, {2, 33, 8}, 2));
}

TEST(CastStageTest, Fp32ToFp16IsRoundToNearestEven) {
  TensorMeta meta;
  meta.dtype = DType::kFP32;
  meta.shape = {1, 1, 8};
  const float v[8] = {1.0f, -0.0f, 1e-7f, 65504.0f, 1e6f, -INFINITY, NAN, 1.0f + 1.0f / 4096};
  std::vector<uint8_t> bytes(32);
  std::memcpy(bytes.data(), v, 32);
  auto out = MakeCodec("cast+huff").value()->Compress(*TensorView::Make(meta, bytes));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_FALSE(out->report.lossless);
  ASSERT_TRUE(out->report.error.has_value());
  auto back = Decompress(out->frame);
  ASSERT_TRUE(back.ok());
  ASSERT_EQ(back->meta.dtype, DType::kFP32);
  float r[8];
  std::memcpy(r, back->bytes.data(), 32);
  for (int i = 0; i < 8; ++i) {
    const float want = HalfBitsToFloat(FloatToHalfBits(v[i]));
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(r[i]));
    } else {
      EXPECT_EQ(std::memcmp(&r[i], &want, 4), 0) << i;
    }
  }
  EXPECT_EQ(r[4], INFINITY);  // overflow rounds to infinity
  EXPECT_TRUE(std::signbit(r[1]));
}

// FP32 values that FP16 holds exactly come back bit-exact, and are reported so; one value
// more that FP16 cannot hold makes the same pipeline lossy, with its error.
TEST(CastStageTest, ReportsLosslessExactlyWhenTheTensorSurvives) {
  TensorMeta meta;
  meta.dtype = DType::kFP32;
  meta.shape = {1, 2, 4};
  float v[8] = {1.0f, -0.0f, 0.5f, -2.25f, 65504.0f, INFINITY, 3.0f, 1024.0f};
  std::vector<uint8_t> bytes(32);
  std::memcpy(bytes.data(), v, 32);
  auto exact = MakeCodec("cast+zstd(1)").value()->Compress(*TensorView::Make(meta, bytes));
  ASSERT_TRUE(exact.ok()) << exact.status();
  EXPECT_TRUE(exact->report.lossless);
  EXPECT_FALSE(exact->report.error.has_value());
  v[7] = 1.0f + 1.0f / 4096;  // needs 12 mantissa bits; FP16 has 10
  std::memcpy(bytes.data(), v, 32);
  auto lossy = MakeCodec("cast+zstd(1)").value()->Compress(*TensorView::Make(meta, bytes));
  ASSERT_TRUE(lossy.ok()) << lossy.status();
  EXPECT_FALSE(lossy->report.lossless);
  ASSERT_TRUE(lossy->report.error.has_value());
  EXPECT_GT(lossy->report.error->max_abs, 0);
}

TEST(CastStageTest, RefusesToWidenOrCrossConvert) {
  Tensor t = testing::RandomBitsTensor(DType::kBF16, {1, 4, 4}, 1);
  EXPECT_EQ(MakeCodec("cast(fp16)+huff").value()->Compress(t.view()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace kvcomp

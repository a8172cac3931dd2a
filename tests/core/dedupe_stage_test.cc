#include <gtest/gtest.h>

#include "tests/core/lossless_test_util.h"

namespace kvcomp {
namespace {

TEST(DedupeStageTest, BitExactEverywhere) { testing::ExpectLosslessEverywhere("dedupe+huff"); }

TEST(DedupeStageTest, ZstdCannotFollowItsOpaqueRowMap) {
  // zstd takes typed streams only; the row map is opaque. Planned, so refused before encoding.
  Tensor t = testing::RandomBitsTensor(DType::kFP16, {2, 8, 4}, 1);
  auto out = MakeCodec("dedupe+zstd(1)").value()->Compress(t.view());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
}

// A lossy stage after dedupe would quantise the zero padding rows its decoder checks, so the
// frame would not decode (fuzz_roundtrip found `dedupe+quant(group=tensor)` answering DATA_LOSS
// from Compress). Refused when the pipeline is built; after the lossy stage it works.
TEST(DedupeStageTest, ALossyStageCannotFollowIt) {
  for (const char* spec : {"dedupe+quant(bits=8,group=tensor)+zstd(1)", "dedupe+uquant(0.01)",
                           "dedupe+huff+blocknorm"}) {
    auto codec = MakeCodec(spec);
    ASSERT_FALSE(codec.ok()) << spec;
    EXPECT_EQ(codec.status().code(), absl::StatusCode::kInvalidArgument) << spec;
    EXPECT_NE(codec.status().message().find("cannot come before the lossy stage"),
              absl::string_view::npos)
        << codec.status();
  }
  Tensor t = testing::RandomBitsTensor(DType::kFP16, {2, 8, 4}, 1);
  for (size_t i = 1; i < t.bytes.size(); i += 2) t.bytes[i] &= 0x3b;  // finite values
  auto after = MakeCodec("quant(bits=8,group=tensor)+dedupe+huff");
  ASSERT_TRUE(after.ok()) << after.status();
  auto frame = (*after)->Compress(t.view());
  ASSERT_TRUE(frame.ok()) << frame.status();
  EXPECT_TRUE(Decompress(frame->frame).ok());
}

TEST(DedupeStageTest, RealCachesRoundTripAndShrinkV) {
  testing::ExpectRealKvRoundTrips("dedupe+huff", 1.2);
}

TEST(DedupeStageTest, RepeatedRowsCostAlmostNothing) {
  // 64 tokens, 16 of them distinct: the frame must be much smaller than without dedupe.
  Tensor base = testing::RandomBitsTensor(DType::kFP16, {4, 16, 8}, 5);
  Tensor t;
  t.meta = base.meta;
  t.meta.shape = {4, 64, 8};
  t.bytes.resize(t.meta.NumBytes());
  for (int h = 0; h < 4; ++h) {
    for (int tok = 0; tok < 64; ++tok) {
      std::memcpy(&t.bytes[(h * 64 + tok) * 16], &base.bytes[(h * 16 + (tok * 7) % 16) * 16], 16);
    }
  }
  auto with = MakeCodec("dedupe+huff").value()->Compress(t.view());
  auto without = MakeCodec("huff").value()->Compress(t.view());
  ASSERT_TRUE(with.ok() && without.ok());
  EXPECT_LT(with->frame.size() * 3, without->frame.size());
  testing::ExpectRoundTrip("dedupe+huff", t, "repeated rows");
}

TEST(DedupeStageTest, CorruptRowMapIsRejected) {
  Tensor t = testing::SpecialsTensor(DType::kFP16, {2, 60, 8}, 11);
  testing::ExpectCorruptionIsSafe("dedupe", t, /*expect_rejections=*/false);
  // The row map itself: a reference past the distinct rows, a wrong count.
  auto stage = StageRegistry::Get().Create(ParseSpec("dedupe").value()[0]);
  const StreamDesc want{ElemType::kF16, Geometry{1, 4, 2}};
  std::vector<uint8_t> data(16, 0);
  for (const std::vector<uint8_t>& map : std::vector<std::vector<uint8_t>>{
           {5}, {1, 0x0f, 0xff}, {1}, {1, 0x08, 0x01, 0x00}, {0, 0}}) {
    Streams enc;
    enc.push_back(Stream::Own(StreamDesc{ElemType::kF16, {1, 4, 2}}, data));
    enc.push_back(Stream::Own(StreamDesc{}, map));
    Streams dec;
    EXPECT_EQ((*stage)->Decode(enc, {&want, 1}, &dec).code(), absl::StatusCode::kDataLoss);
  }
}

}  // namespace
}  // namespace kvcomp

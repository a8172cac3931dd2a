#include "core/kvcomp/frame.h"

#include <gtest/gtest.h>
#include <zstd.h>

#include "core/kvcomp/codec.h"
#include "core/kvcomp/stage_ids.h"
#include "tests/core/test_data.h"

namespace kvcomp {
namespace {

std::vector<uint8_t> SmallFrame() {
  Tensor t = testing::RandomBitsTensor(DType::kFP16, {2, 5, 3}, 1);
  t.meta.layer = 3;
  t.meta.kind = Kind::kValue;
  auto codec = MakeCodec("zstd(1)");
  return (*codec)->Compress(t.view())->frame;
}

TEST(FrameTest, HeaderRoundTrips) {
  const auto frame = SmallFrame();
  auto parsed = ParseFrame(frame);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->frame_bytes, frame.size());
  EXPECT_EQ(parsed->header.meta.layer, 3);
  EXPECT_EQ(parsed->header.meta.kind, Kind::kValue);
  EXPECT_EQ(parsed->header.meta.shape, (std::vector<int64_t>{2, 5, 3}));
  ASSERT_EQ(parsed->header.stages.size(), 1u);
  EXPECT_EQ(parsed->header.stages[0].id, 1);
  EXPECT_EQ(parsed->header.stages[0].values, (ParamValues{1}));
}

TEST(FrameTest, EveryFlippedByteIsRejected) {
  const auto frame = SmallFrame();
  for (size_t i = 0; i < frame.size(); ++i) {
    for (uint8_t mask : {0x01, 0x80, 0xff}) {
      auto bad = frame;
      bad[i] ^= mask;
      auto decoded = Decompress(bad);
      ASSERT_FALSE(decoded.ok()) << "byte " << i << " mask " << int(mask);
      const auto code = decoded.status().code();
      EXPECT_TRUE(code == absl::StatusCode::kDataLoss || code == absl::StatusCode::kInvalidArgument)
          << decoded.status();
    }
  }
}

TEST(FrameTest, EveryTruncationIsRejected) {
  const auto frame = SmallFrame();
  for (size_t n = 0; n < frame.size(); ++n) {
    auto decoded = Decompress(absl::MakeConstSpan(frame.data(), n));
    ASSERT_FALSE(decoded.ok()) << n;
    EXPECT_EQ(decoded.status().code(), absl::StatusCode::kDataLoss) << decoded.status();
  }
}

TEST(FrameTest, NewerVersionIsInvalidArgument) {
  auto frame = SmallFrame();
  frame[4] = kFrameVersion + 1;
  auto decoded = Decompress(frame);
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(decoded.status().message().find("version"), std::string::npos);
}

TEST(FrameTest, ValidChecksumButHugeShapeIsRefusedBeforeAllocation) {
  FrameHeader h;
  h.meta.dtype = DType::kFP16;
  h.meta.shape = {1 << 20, 1 << 20, 1 << 10};  // 2 PiB
  h.stages.push_back(FrameStage{1, {3}});
  const std::vector<uint8_t> junk(16, 0);
  const auto frame = WriteFrame(h, {absl::MakeConstSpan(junk)}).value();
  DecodeLimits limits;
  limits.max_decoded_bytes = 1 << 30;
  auto decoded = Decompress(frame, limits);
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kResourceExhausted) << decoded.status();
}

TEST(FrameTest, ValidChecksumButWrongStreamCountIsDataLoss) {
  FrameHeader h;
  h.meta.shape = {2, 3};
  h.stages.push_back(FrameStage{1, {3}});
  const std::vector<uint8_t> junk(8, 0);
  auto frame = WriteFrame(h, {absl::MakeConstSpan(junk), absl::MakeConstSpan(junk)}).value();
  EXPECT_EQ(Decompress(frame).status().code(), absl::StatusCode::kDataLoss);
  frame = WriteFrame(h, {absl::MakeConstSpan(junk)}).value();  // one stream, but not zstd
  auto decoded = Decompress(frame);
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(decoded.status().message().find("is not a zstd frame"), std::string::npos)
      << decoded.status();
}

// A zstd frame written without its content size (as a streaming writer with no pledged size
// makes them).
// It is DATA_LOSS saying so (it was "declares -1 bytes").
TEST(FrameTest, ZstdStreamWithoutAContentSizeIsDataLossSayingSo) {
  FrameHeader h;
  h.meta.shape = {2, 3};
  h.stages.push_back(FrameStage{1, {3}});
  const std::vector<uint8_t> raw(12, 7);
  std::vector<uint8_t> z(ZSTD_compressBound(raw.size()));
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 0);
  const size_t n = ZSTD_compress2(cctx, z.data(), z.size(), raw.data(), raw.size());
  ZSTD_freeCCtx(cctx);
  ASSERT_FALSE(ZSTD_isError(n));
  z.resize(n);
  ASSERT_EQ(ZSTD_getFrameContentSize(z.data(), z.size()), ZSTD_CONTENTSIZE_UNKNOWN);
  auto decoded = Decompress(WriteFrame(h, {absl::MakeConstSpan(z)}).value());
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(decoded.status().message().find("does not declare its size (expected 12 bytes)"),
            std::string::npos)
      << decoded.status();
}

// Issue 25, finding 6: Compress took layer -5 and wrote a frame that Decompress refused. The
// rule is TensorMeta's, so both sides apply it.
TEST(FrameTest, LayerBelowMinusOneIsInvalid) {
  TensorMeta m;
  m.shape = {2, 3};
  for (int32_t layer : {-2, -5, INT32_MIN}) {
    m.layer = layer;
    EXPECT_EQ(m.Validate().code(), absl::StatusCode::kInvalidArgument) << layer;
  }
  m.layer = -1;
  EXPECT_TRUE(m.Validate().ok());
  auto codec = MakeCodec("zstd(1)");
  ASSERT_TRUE(codec.ok());
  const std::vector<uint8_t> bytes(12, 0);
  m.layer = -5;
  auto view = TensorView::Make(m, bytes);
  EXPECT_EQ(view.status().code(), absl::StatusCode::kInvalidArgument);
}

// Without a stage's schema its parameters' encoding is unknown (a float was written as an
// integer), and no reader could parse the frame: writing one is refused.
TEST(FrameTest, WritingAnUnknownStageIsRefused) {
  FrameHeader h;
  h.meta.shape = {2, 3};
  h.stages.push_back(FrameStage{250, {0.5}});
  const std::vector<uint8_t> junk(8, 0);
  auto frame = WriteFrame(h, {absl::MakeConstSpan(junk)});
  EXPECT_EQ(frame.status().code(), absl::StatusCode::kInvalidArgument) << frame.status();
}

// A value the stage's schema does not hold would be written as another type (an extra value as
// an integer, whatever it was) and read back as a different stage: refused instead.
TEST(FrameTest, WritingParametersOutsideTheSchemaIsRefused) {
  const std::vector<uint8_t> junk(8, 0);
  for (const ParamValues& values : {ParamValues{3, 0.5}, ParamValues{3.5}, ParamValues{99}}) {
    FrameHeader h;
    h.meta.shape = {2, 3};
    h.stages.push_back(FrameStage{stage_id::kZstd, values});
    auto frame = WriteFrame(h, {absl::MakeConstSpan(junk)});
    EXPECT_EQ(frame.status().code(), absl::StatusCode::kInvalidArgument) << frame.status();
    EXPECT_NE(frame.status().message().find("zstd"), absl::string_view::npos) << frame.status();
  }
}

TEST(FrameTest, SplitFramesFindsEachFrame) {
  const auto a = SmallFrame();
  std::vector<uint8_t> both = a;
  both.insert(both.end(), a.begin(), a.end());
  auto frames = SplitFrames(both);
  ASSERT_TRUE(frames.ok()) << frames.status();
  EXPECT_EQ(frames->size(), 2u);
  both.pop_back();
  EXPECT_FALSE(SplitFrames(both).ok());
}

ParsedFrame HeaderOnly(int32_t layer, Kind kind) {
  ParsedFrame f;
  f.header.meta.layer = layer;
  f.header.meta.kind = kind;
  return f;
}

TEST(FrameTest, TensorFramesGroupsLayeredKAndVBlocksByLayerAndKind) {
  // Blocks of layer 0's K and V interleaved, as a stream sends them, then layer 1's K whole.
  const std::vector<ParsedFrame> frames = {HeaderOnly(0, Kind::kKey), HeaderOnly(0, Kind::kValue),
                                           HeaderOnly(0, Kind::kKey), HeaderOnly(0, Kind::kValue),
                                           HeaderOnly(1, Kind::kKey), HeaderOnly(0, Kind::kKey)};
  EXPECT_EQ(TensorFrames(frames), (std::vector<std::vector<size_t>>{{0, 2, 5}, {1, 3}, {4}}));
}

TEST(FrameTest, TensorFramesKeepsUnlayeredOrUnkindedFramesWhole) {
  // Files from before streams may hold several such tensors of one shape: never grouped.
  const std::vector<ParsedFrame> frames = {
      HeaderOnly(-1, Kind::kKey), HeaderOnly(-1, Kind::kKey), HeaderOnly(2, Kind::kUnspecified),
      HeaderOnly(2, Kind::kUnspecified), HeaderOnly(2, Kind::kValue)};
  EXPECT_FALSE(GroupedByLayerKind(frames[0].header.meta));
  EXPECT_FALSE(GroupedByLayerKind(frames[2].header.meta));
  EXPECT_TRUE(GroupedByLayerKind(frames[4].header.meta));
  EXPECT_EQ(TensorFrames(frames), (std::vector<std::vector<size_t>>{{0}, {1}, {2}, {3}, {4}}));
  EXPECT_TRUE(TensorFrames({}).empty());
}

TEST(FrameTest, TensorFramesOfRealFramesFromOneBuffer) {
  // SplitFrames then ParseFrame, as `kvcomp info` reads a .kvc file: two blocks of one tensor.
  std::vector<uint8_t> file = SmallFrame();
  const std::vector<uint8_t> again = SmallFrame();
  file.insert(file.end(), again.begin(), again.end());
  auto split = SplitFrames(file);
  ASSERT_TRUE(split.ok()) << split.status();
  std::vector<ParsedFrame> headers;
  for (auto f : *split) {
    auto parsed = ParseFrame(f);
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    headers.push_back(*std::move(parsed));
  }
  EXPECT_EQ(TensorFrames(headers), (std::vector<std::vector<size_t>>{{0, 1}}));
}

}  // namespace
}  // namespace kvcomp

#include <gtest/gtest.h>

#include "tests/core/lossless_test_util.h"

namespace kvcomp {
namespace {

std::unique_ptr<Stage> ReorderStage() {
  auto stage = StageRegistry::Get().Create(ParseSpec("reorder").value()[0]);
  EXPECT_TRUE(stage.ok()) << stage.status();
  return std::move(stage).value();
}

std::vector<uint8_t> HalfBytes(const std::vector<float>& v) {
  std::vector<uint8_t> b(v.size() * 2);
  for (size_t i = 0; i < v.size(); ++i) {
    const uint16_t h = FloatToHalfBits(v[i]);
    std::memcpy(&b[2 * i], &h, 2);
  }
  return b;
}

TEST(ReorderStageTest, BitExactEverywhere) {
  testing::ExpectLosslessEverywhere("reorder");
  testing::ExpectLosslessEverywhere("reorder+gear+huff");
  testing::ExpectLosslessEverywhere("reorder+planes+zstd(3)");
  testing::ExpectLosslessEverywhere("gear+reorder+zstd(1)");  // integer streams too
  testing::ExpectLosslessEverywhere("dedupe+reorder+huff");   // opaque row map passes
}

TEST(ReorderStageTest, RealCachesRoundTrip) {
  testing::ExpectRealKvRoundTrips("reorder+planes+zstd(3)", 1.05);
  testing::ExpectRealKvRoundTrips("reorder+gear+huff", 1.05);
}

// What the stage is for: in token-major K, sorting across heads puts every head's outlier
// channels together, and zstd over byte planes gains (measured: K -0.6% with zstd(3), -1.0%
// with zstd(19), permutation included). Head-major rows hold one head, and there it does not
// pay (see reorder_stage.cc); nor for V.
TEST(ReorderStageTest, ShrinksTokenMajorKWithPlanesZstd) {
  if (!testing::HaveSharedKv()) GTEST_SKIP() << "../shared/kv is absent";
  auto with = MakeCodec("reorder+planes+zstd(3)").value();
  auto without = MakeCodec("planes+zstd(3)").value();
  uint64_t a = 0, b = 0;
  for (const auto& nt : testing::LoadSharedKv(DType::kFP16)) {
    if (nt.tensor.meta.kind != Kind::kKey) continue;
    // [H,T,D] -> [T,H,D]
    const auto& s = nt.tensor.meta.shape;
    const int64_t H = s[0], T = s[1], D = s[2];
    Tensor t;
    t.meta = nt.tensor.meta;
    t.meta.layout = Layout::kTokenMajor;
    t.meta.shape = {T, H, D};
    t.bytes.resize(nt.tensor.bytes.size());
    for (int64_t h = 0; h < H; ++h) {
      for (int64_t x = 0; x < T; ++x) {
        std::memcpy(&t.bytes[(x * H + h) * D * 2], &nt.tensor.bytes[(h * T + x) * D * 2], D * 2);
      }
    }
    auto c1 = with->Compress(t.view());
    auto c2 = without->Compress(t.view());
    ASSERT_TRUE(c1.ok() && c2.ok());
    a += c1->frame.size();
    b += c2->frame.size();
    auto back = Decompress(c1->frame);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_TRUE(back->bytes == t.bytes) << nt.name;
  }
  ASSERT_GT(b, 0u);
  EXPECT_LT(a, b);
}

TEST(ReorderStageTest, HeadMajorSharesOnePermutationSortedByMagnitude) {
  // Two heads (planes), 3 tokens, 4 channels, with mixed signs. Alone, head 0 (|x| 8, 0.5,
  // 4, 1) would sort as {1, 3, 2, 0} and head 1 (|x| 4, 1, 16, 0.25) as {3, 1, 0, 2}; the
  // magnitude summed over both heads orders them 3, 1, 0, 2, and both heads use that.
  const std::vector<float> v = {
      8,  0.5,  -4,  1,     // head 0, token 0
      -8, 0.5,  4,   -1,    // token 1
      8,  -0.5, 4,   1,     // token 2
      4,  1,    16,  0.25,  // head 1, token 0
      -4, -1,   16,  0.25,  //
      4,  1,    -16, -0.25,
  };
  const std::vector<uint8_t> bytes = HalfBytes(v);
  const StreamDesc d{ElemType::kF16, Geometry{2, 3, 4}};
  auto stage = ReorderStage();
  auto plan = stage->Plan({&d, 1});
  ASSERT_TRUE(plan.ok());
  ASSERT_EQ(plan->size(), 2u);
  EXPECT_EQ((*plan)[1].type, ElemType::kU8);
  EXPECT_EQ((*plan)[1].geom, (Geometry{1, 1, 4}));
  Streams in;
  in.push_back(Stream::Borrow(d, bytes));
  Streams out;
  ASSERT_TRUE(stage->Encode(in, &out).ok());
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].desc().geom, d.geom);
  const std::vector<uint8_t> perm(out[1].data().begin(), out[1].data().end());
  EXPECT_EQ(perm, (std::vector<uint8_t>{3, 1, 0, 2}));
  // Token 1 of head 0 is now {-1, 0.5, -8, 4}; token 2 of head 1 is {-0.25, 1, 4, -16}.
  const std::vector<uint8_t> want = HalfBytes({-1, 0.5, -8, 4});
  EXPECT_TRUE(std::equal(want.begin(), want.end(), out[0].data().begin() + 8));
  const std::vector<uint8_t> want2 = HalfBytes({-0.25, 1, 4, -16});
  EXPECT_TRUE(std::equal(want2.begin(), want2.end(), out[0].data().begin() + 40));
  Streams dec;
  ASSERT_TRUE(stage->Decode(out, {&d, 1}, &dec).ok());
  ASSERT_EQ(dec.size(), 1u);
  EXPECT_TRUE(std::equal(bytes.begin(), bytes.end(), dec[0].data().begin()));
}

TEST(ReorderStageTest, TokenMajorSortsAcrossHeads) {
  // Token-major [T=2, H=2, D=2]: one plane of 2 x 4; the order mixes the heads' channels.
  Tensor t;
  t.meta.dtype = DType::kFP16;
  t.meta.layout = Layout::kTokenMajor;
  t.meta.shape = {2, 2, 2};
  t.bytes = HalfBytes({16, 1, 0.5, 4,  //
                       -16, 1, 0.5, -4});
  const StreamDesc d{ElemType::kF16, GeometryOf(t.meta)};
  ASSERT_EQ(d.geom, (Geometry{1, 2, 4}));
  Streams in;
  in.push_back(Stream::Borrow(d, t.bytes));
  Streams out;
  auto stage = ReorderStage();
  ASSERT_TRUE(stage->Encode(in, &out).ok());
  const std::vector<uint8_t> perm(out[1].data().begin(), out[1].data().end());
  EXPECT_EQ(perm, (std::vector<uint8_t>{2, 1, 3, 0}));
  testing::ExpectRoundTrip("reorder+gear+huff", t, "token-major");
}

TEST(ReorderStageTest, WideRowsUseU16Indices) {
  // 300 channels: indices need 16 bits. Channel c holds |x| ~ (299 - c): the order reverses.
  std::vector<float> v(2 * 300);
  for (int r = 0; r < 2; ++r)
    for (int c = 0; c < 300; ++c) v[r * 300 + c] = (r ? -1.0f : 1.0f) * (300 - c);
  const std::vector<uint8_t> bytes = HalfBytes(v);
  const StreamDesc d{ElemType::kF16, Geometry{1, 2, 300}};
  auto stage = ReorderStage();
  Streams in;
  in.push_back(Stream::Borrow(d, bytes));
  Streams out;
  ASSERT_TRUE(stage->Encode(in, &out).ok());
  EXPECT_EQ(out[1].desc().type, ElemType::kU16);
  ASSERT_EQ(out[1].data().size(), 600u);
  for (int j = 0; j < 300; ++j) {
    uint16_t idx;
    std::memcpy(&idx, out[1].data().data() + 2 * j, 2);
    EXPECT_EQ(idx, 299 - j);
  }
}

TEST(ReorderStageTest, EmptyTensorsCarryNoPermutation) {
  // No elements: an empty permutation stream, whatever the claimed width.
  const StreamDesc d{ElemType::kF16, Geometry{4, 0, uint64_t{1} << 40}};
  auto plan = ReorderStage()->Plan({&d, 1});
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ((*plan)[1].bytes(), 0u);
  testing::ExpectRoundTrip("reorder+planes+zstd(3)",
                           testing::RandomBitsTensor(DType::kFP16, {4, 0, 8}, 3), "empty");
}

TEST(ReorderStageTest, DecodeRejectsNonPermutations) {
  auto stage = ReorderStage();
  const StreamDesc want{ElemType::kF16, Geometry{2, 3, 4}};
  const std::vector<uint8_t> data(want.bytes(), 0x55);
  for (const std::vector<uint8_t>& perm :
       std::vector<std::vector<uint8_t>>{{0, 1, 2, 2},     // repeated index
                                         {3, 3, 3, 3},     // one index everywhere
                                         {0, 1, 2, 4},     // out of range
                                         {255, 0, 1, 2},   // out of range
                                         {0, 1, 2},        // short
                                         {0, 1, 2, 3, 0},  // long
                                         {}}) {
    Streams enc;
    enc.push_back(Stream::Own(want, data));
    enc.push_back(Stream::Own(StreamDesc{ElemType::kU8, {1, 1, 4}}, perm));
    Streams dec;
    EXPECT_EQ(stage->Decode(enc, {&want, 1}, &dec).code(), absl::StatusCode::kDataLoss);
  }
  // A missing permutation stream, and a short data stream.
  Streams enc;
  enc.push_back(Stream::Own(want, data));
  Streams dec;
  EXPECT_EQ(stage->Decode(enc, {&want, 1}, &dec).code(), absl::StatusCode::kDataLoss);
  enc.push_back(Stream::Own(StreamDesc{ElemType::kU8, {1, 1, 4}}, {0, 1, 2, 3}));
  enc[0] = Stream::Own(want, std::vector<uint8_t>(data.size() - 2));
  EXPECT_EQ(stage->Decode(enc, {&want, 1}, &dec).code(), absl::StatusCode::kDataLoss);
  // 16-bit indices: 300 is out of range for 300 channels.
  const StreamDesc wide{ElemType::kF16, Geometry{1, 1, 300}};
  std::vector<uint8_t> idx(600);
  for (uint16_t j = 0; j < 300; ++j) std::memcpy(&idx[2 * j], &j, 2);
  const uint16_t bad = 300;
  std::memcpy(&idx[2 * 7], &bad, 2);
  Streams enc2;
  enc2.push_back(Stream::Own(wide, std::vector<uint8_t>(600, 1)));
  enc2.push_back(Stream::Own(StreamDesc{ElemType::kU16, {1, 1, 300}}, idx));
  EXPECT_EQ(stage->Decode(enc2, {&wide, 1}, &dec).code(), absl::StatusCode::kDataLoss);
}

TEST(ReorderStageTest, CorruptionIsSafe) {
  const Tensor t = testing::SpecialsTensor(DType::kFP16, {2, 50, 8}, 7);
  testing::ExpectCorruptionIsSafe("reorder", t, /*expect_rejections=*/false);
  testing::ExpectCorruptionIsSafe("reorder+huff", t);
  testing::ExpectCorruptionIsSafe("reorder+planes+zstd(3)", t);
  testing::ExpectCorruptionIsSafe(
      "reorder", testing::SpecialsTensor(DType::kFP32, {30, 4, 8}, 8, Layout::kTokenMajor),
      /*expect_rejections=*/false);
}

}  // namespace
}  // namespace kvcomp

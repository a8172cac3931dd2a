#include <gtest/gtest.h>

#include <random>

#include "core/kvcomp/stages/huffman_codes.h"
#include "core/kvcomp/stages/huffman_plane.h"
#include "tests/core/lossless_test_util.h"

namespace kvcomp {
namespace {

TEST(HuffStageTest, BitExactEverywhere) { testing::ExpectLosslessEverywhere("huff"); }

TEST(HuffStageTest, RealCachesBeatOrderZeroPeers) {
  // Order-0 hi byte + raw lo byte measured 1.166 in docs/CODEC_NOTES.md; zstd -3 gives 1.155.
  testing::ExpectRealKvRoundTrips("huff", 1.155);
}

TEST(HuffStageTest, LengthsAreLimitedAndComplete) {
  uint64_t freq[256] = {};
  // Fibonacci frequencies force a deep tree without the limit.
  uint64_t a = 1, b = 1;
  for (int s = 0; s < 40; ++s) {
    freq[s] = a;
    const uint64_t c = a + b;
    a = b;
    b = c;
  }
  uint8_t len[256];
  huffman::BuildLengths(freq, len);
  uint16_t code[256];
  EXPECT_TRUE(huffman::CanonicalCodes(len, code));
  for (int s = 0; s < 40; ++s) {
    EXPECT_GE(len[s], 1);
    EXPECT_LE(len[s], huffman::kMaxLen);
  }
}

TEST(HuffStageTest, PlanesCodedFromTheCallersCountsAreEncodePlanesBytes) {
  // qhuff hands over its segment counts (EncodeCountedPlane): the plane must be the one
  // EncodePlane makes from its own count, and decode.
  std::mt19937 rng(3);
  std::geometric_distribution<int> small(0.3);
  for (const size_t n : {size_t{1}, size_t{2}, size_t{5}, size_t{100}, size_t{4097}, size_t{65535},
                         (size_t{1} << 18) - 1}) {
    for (int kind = 0; kind < 3; ++kind) {  // skewed below 64, constant, uniform (raw)
      std::vector<uint8_t> plane(n);
      for (uint8_t& b : plane) {
        b = kind == 0 ? static_cast<uint8_t>(std::min(small(rng), 63)) : kind == 1 ? 7 : rng();
      }
      const huffman::Segments seg(n);
      uint64_t counts[4][256] = {};
      for (int k = 0; k < 4; ++k) {
        for (size_t i = 0; i < seg.count[k]; ++i) ++counts[k][plane[seg.start[k] + i]];
      }
      std::vector<uint8_t> want, got;
      huffman::EncodePlane(plane.data(), 1, n, true, &want);
      huffman::EncodeCountedPlane(plane.data(), n, counts, &got);
      const std::string at = "n=" + std::to_string(n) + " kind=" + std::to_string(kind);
      EXPECT_TRUE(got == want) << at;
      ByteReader br(got);
      std::vector<uint8_t> scratch(n);
      const uint8_t* back = nullptr;
      ASSERT_TRUE(huffman::DecodePlane("test", &br, n, scratch.data(), &back).ok()) << at;
      EXPECT_TRUE(std::equal(plane.begin(), plane.end(), back)) << at;
    }
  }
}

TEST(HuffStageTest, LargeSkewedPlanesUseTheFastPaths) {
  // > 2^18 elements: sampled raw decision and the bulk 2-symbols-per-lookup decoder.
  Tensor t = testing::RandomBitsTensor(DType::kFP16, {4, 40000, 2}, 8);
  for (size_t i = 1; i < t.bytes.size(); i += 2) t.bytes[i] = 0x3c + (t.bytes[i] % 5 == 0);
  testing::ExpectRoundTrip("huff", t, "skewed large");
  auto out = MakeCodec("huff").value()->Compress(t.view());
  EXPECT_LT(out->frame.size(), t.bytes.size() * 6 / 10);
}

TEST(HuffStageTest, SampledPlanesCodeValuesTheSampleMissed) {
  // Planes of 2^18 elements and more take their code from a 1/8 sample (64 chunks, each at
  // the start of its 1/64 of the plane). Rare values placed at the end of every 1/64, where
  // the sample never looks, and at both extremes of sign and magnitude must still round-trip.
  const int64_t n = int64_t{1} << 19;
  Tensor t = testing::RandomBitsTensor(DType::kFP16, {1, n, 1}, 12);
  const size_t span = static_cast<size_t>(n) / 64;
  const uint8_t rare[] = {0x00, 0x7b, 0x80, 0xfb, 0x41, 0xc1};
  for (size_t i = 0; i < static_cast<size_t>(n); ++i) {
    uint8_t& hi = t.bytes[2 * i + 1];
    hi = static_cast<uint8_t>(0x3c + hi % 4);
    if (i % span == span - 1) hi = rare[(i / span) % 6];
  }
  testing::ExpectRoundTrip("huff", t, "sampled plane with unsampled values");
  // Still Huffman: 2 bits for the four common values would give 0.625 of the raw size; each of
  // the ~250 values in the range that get a code without a count costs 2^-11 of the code
  // space, which here lengthens one common code.
  auto out = MakeCodec("huff").value()->Compress(t.view());
  EXPECT_LT(out->frame.size(), t.bytes.size() * 66 / 100);
  // And a plane holding one value is stored as a constant, however large.
  for (size_t i = 0; i < static_cast<size_t>(n); ++i) t.bytes[2 * i + 1] = 0x3c;
  testing::ExpectRoundTrip("huff", t, "sampled constant plane");
  out = MakeCodec("huff").value()->Compress(t.view());
  EXPECT_LT(out->frame.size(), t.bytes.size() / 2 + 64);
}

TEST(HuffStageTest, SegmentsOfVeryDifferentDensityAreCodedInPlace) {
  // The four segments are coded side by side straight into the frame. Here the first quarter
  // of the high plane takes short codes and the rest long ones, so the first writer nears
  // its end symbols before the others, and none may spill into its neighbour.
  for (const int64_t n : {int64_t{1} << 18, (int64_t{1} << 18) + 3, int64_t{4001}}) {
    for (const DType dt : {DType::kFP16, DType::kFP32}) {
      Tensor t = testing::RandomBitsTensor(dt, {1, n, 1}, 11);
      const size_t es = DTypeSize(dt);
      const size_t quarter = static_cast<size_t>(n + 3) / 4;
      for (size_t i = 0; i < static_cast<size_t>(n); ++i) {
        uint8_t& hi = t.bytes[i * es + es - 1];
        hi = i < quarter ? 0x3c : static_cast<uint8_t>(hi % 200);
      }
      testing::ExpectRoundTrip("huff", t, "segments of different density");
    }
  }
}

TEST(HuffStageTest, CorruptionIsSafe) {
  testing::ExpectCorruptionIsSafe("huff", testing::SpecialsTensor(DType::kFP16, {2, 200, 8}, 3));
  if (testing::HaveSharedKv()) {
    testing::ExpectCorruptionIsSafe("huff", testing::LoadSharedKv(DType::kFP16)[0].tensor);
  }
}

}  // namespace
}  // namespace kvcomp

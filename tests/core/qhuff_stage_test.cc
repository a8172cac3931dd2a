#include <gtest/gtest.h>

#include <random>

#include "core/kvcomp/internal/byte_io.h"
#include "core/kvcomp/stages/float_io.h"
#include "core/kvcomp/stages/huffman_plane.h"
#include "core/kvcomp/synth/llama_synth.h"
#include "tests/core/lossless_test_util.h"

namespace kvcomp {
namespace {

// Codes one typed stream with qhuff alone and decodes it again; returns the coded size.
size_t RoundTripStream(ElemType type, const Geometry& g, const std::vector<uint8_t>& bytes) {
  auto stage = StageRegistry::Get().Create(ParseSpec("qhuff").value()[0]);
  EXPECT_TRUE(stage.ok());
  const StreamDesc desc{type, g};
  Streams in;
  in.push_back(Stream::Borrow(desc, bytes));
  Streams coded;
  EXPECT_TRUE((*stage)->Encode(in, &coded).ok());
  Streams back;
  const absl::Status st = (*stage)->Decode(coded, {desc}, &back);
  EXPECT_TRUE(st.ok()) << st;
  if (!st.ok()) return 0;
  EXPECT_TRUE(std::equal(bytes.begin(), bytes.end(), back[0].data().begin(), back[0].data().end()))
      << "qhuff is not exact on a " << g.planes << "x" << g.rows << "x" << g.cols << " stream";
  // Streamed (the pipeline's fused decode): the pieces come in order, each once, cover the
  // stream and hold its bytes; a stream of several of the coder's chunks comes in several.
  std::vector<uint8_t> pieces;
  size_t next = 0, count = 0;
  Streams streamed;
  const absl::Status ss = (*stage)->DecodeStreaming(
      coded, {desc},
      [&](size_t first, size_t n, const uint8_t* p) {
        EXPECT_EQ(first, next);
        next = first + n, ++count;
        pieces.insert(pieces.end(), p, p + n * ElemSize(type));
      },
      &streamed);
  EXPECT_TRUE(ss.ok()) << ss;
  EXPECT_TRUE(streamed.empty());
  EXPECT_EQ(next, g.size());
  EXPECT_TRUE(pieces == bytes) << "qhuff's streamed pieces differ on a " << g.planes << "x"
                               << g.rows << "x" << g.cols << " stream";
  if (g.size() > 3 * 8192 && coded[0].data().size() < bytes.size() / 2) {
    EXPECT_GE(count, 3u);
  }
  return coded[0].data().size();
}

std::vector<uint8_t> U16Bytes(const std::vector<uint16_t>& v) {
  std::vector<uint8_t> b(2 * v.size());
  for (size_t i = 0; i < v.size(); ++i) b[2 * i] = v[i] & 255, b[2 * i + 1] = v[i] >> 8;
  return b;
}

// Zigzag codes of a Laplacian-ish source of scale `scale`, with a slow drift down each column
// in the first `drifting` columns (K's RoPE channels) and `outliers` huge values.
std::vector<uint16_t> Codes(const Geometry& g, double scale, size_t drifting, size_t outliers,
                            uint32_t seed) {
  std::mt19937 rng(seed);
  std::exponential_distribution<double> mag(1.0 / scale);
  std::vector<uint16_t> v(g.size());
  for (uint64_t p = 0; p < g.planes; ++p) {
    for (uint64_t t = 0; t < g.rows; ++t) {
      for (uint64_t c = 0; c < g.cols; ++c) {
        double x = mag(rng) * (rng() & 1 ? 1 : -1);
        if (c < drifting) x = 40 * scale * std::sin(0.01 * static_cast<double>(t) + c) + x / 8;
        v[(p * g.rows + t) * g.cols + c] = ZigZag16(static_cast<int32_t>(std::lround(x)));
      }
    }
  }
  for (size_t i = 0; i < outliers && !v.empty(); ++i) v[rng() % v.size()] = 60000 + rng() % 5000;
  return v;
}

TEST(QhuffStageTest, BitExactEverywhere) {
  // On float tensors directly (FP16/BF16 words are coded as integers, FP32 stored raw) and on
  // the u8 and u16 streams of the plane splitters.
  testing::ExpectLosslessEverywhere("qhuff");
  testing::ExpectLosslessEverywhere("gear+qhuff");
  testing::ExpectLosslessEverywhere("planes+qhuff");
}

TEST(QhuffStageTest, QuantisedCodesRoundTripAtEveryScale) {
  // Scales from all-tiny codes (k = 0, one or two symbols) to codes that mostly escape; shapes
  // with one row (no prediction), partial last rows, streams large enough to be sampled, and
  // streams of several of the coder's 8192-element chunks cut mid-row (3 and 7 columns), and
  // rows longer than a chunk (which a streamed decode cannot keep beside one).
  const std::vector<Geometry> shapes = {{1, 1, 1},    {1, 1, 7},     {3, 1, 5},     {2, 37, 8},
                                        {8, 64, 16},  {1, 513, 3},   {4, 4096, 32}, {1, 70000, 1},
                                        {3, 3001, 7}, {2, 20000, 3}, {2, 3, 9000}};
  uint32_t seed = 1;
  for (const Geometry& g : shapes) {
    for (double scale : {0.3, 3.0, 40.0, 900.0, 20000.0}) {
      for (size_t drifting : {size_t{0}, size_t{2}}) {
        auto v = Codes(g, scale, std::min<size_t>(drifting, g.cols), g.size() / 50, ++seed);
        RoundTripStream(ElemType::kU16, g, U16Bytes(v));
        // A zero tail that ends inside a row: trimmed, and prediction must stop where it ends.
        for (size_t i = v.size() * 2 / 3; i < v.size(); ++i) v[i] = 0;
        RoundTripStream(ElemType::kU16, g, U16Bytes(v));
      }
    }
  }
}

TEST(QhuffStageTest, EveryU16AndU8ValueRoundTrips) {
  std::vector<uint16_t> all(65536);
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<uint16_t>(i * 40503u);
  RoundTripStream(ElemType::kU16, {1, 256, 256}, U16Bytes(all));
  std::vector<uint8_t> bytes(4096);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i * 37 + i / 256);
  RoundTripStream(ElemType::kU8, {4, 32, 32}, bytes);
}

TEST(QhuffStageTest, SampledStreamsCodeValuesTheSampleMissed) {
  // Streams of 2^16 values and more take k and the code from a 1/16 sample (64 chunks at the
  // start of each 1/64). Large values placed only where the sample never looks must still get
  // a code: every quotient up to the stream's maximum has one.
  const Geometry g{1, 1 << 17, 1};
  auto v = Codes(g, 2.0, 0, 0, 7);
  const size_t span = g.size() / 64;
  for (size_t i = span - 1; i < v.size(); i += span) v[i] = static_cast<uint16_t>(20 + i % 200);
  const size_t coded = RoundTripStream(ElemType::kU16, g, U16Bytes(v));
  EXPECT_LT(coded, g.size() * 2 / 3);  // still coded, not raw
}

TEST(QhuffStageTest, LongPlanesDecodeRunsOfUpToFourSymbolsPerLookup) {
  // Planes of 2^19 symbols and more decode up to four symbols a lookup, smaller ones two: tiny
  // codes (1-bit symbols, four to a lookup), mid-sized and escaping ones, a length that is no
  // multiple of a segment's group, and corrupt streams of that size.
  const Geometry g{1, (1 << 19) + 37, 1};
  uint32_t seed = 40;
  for (double scale : {0.3, 3.0, 40.0}) {
    RoundTripStream(ElemType::kU16, g, U16Bytes(Codes(g, scale, 0, 20, ++seed)));
  }
  Tensor big;
  big.meta.dtype = DType::kFP16;
  big.meta.shape = {1, static_cast<int64_t>(g.rows), 1};
  big.bytes = U16Bytes(Codes(g, 3.0, 0, 20, 3));
  testing::ExpectCorruptionIsSafe("qhuff", big, true, 40);
}

TEST(QhuffStageTest, PredictsSlowChannelsAndLeavesNoisyOnesAlone) {
  // Half the columns drift slowly (prediction wins by far), half are noise (prediction would
  // double their spread). The frame must beat both "predict nothing" (delta-free codes) and
  // "predict everything" (delta+qhuff on the same codes), and be far below 16 bits per value.
  const Geometry g{4, 2048, 16};
  auto v = Codes(g, 6.0, 8, 0, 3);
  const size_t mixed = RoundTripStream(ElemType::kU16, g, U16Bytes(v));
  EXPECT_LT(mixed, g.size() * 2 * 45 / 100);
  // The noise columns alone, coded as they are.
  std::vector<uint16_t> noise(v.size());
  for (size_t i = 0; i < v.size(); ++i)
    noise[i] = (i % g.cols) < 8 ? v[i - (i % g.cols) + 8] : v[i];
  const size_t plain = RoundTripStream(ElemType::kU16, g, U16Bytes(noise));
  // Drifting columns cost bits only for their small residuals: the mixed stream is barely
  // larger than one made of noise columns only.
  EXPECT_LT(mixed, plain * 11 / 10);
}

TEST(QhuffStageTest, UquantCodesDecodeAsWithAnyOtherCoder) {
  if (!testing::HaveSharedKv()) GTEST_SKIP() << "../shared/kv is absent";
  uint64_t raw = 0, zstd = 0, q = 0;
  for (const auto& t : testing::LoadSharedKv(DType::kFP16)) {
    const std::string step = t.tensor.meta.kind == Kind::kKey ? "0.02" : "0.002";
    auto a = MakeCodec("uquant(" + step + ")+qhuff").value()->Compress(t.tensor.view());
    auto b = MakeCodec("uquant(" + step + ")+zstd(1)").value()->Compress(t.tensor.view());
    ASSERT_TRUE(a.ok() && b.ok());
    auto da = Decompress(a->frame);
    auto db = Decompress(b->frame);
    ASSERT_TRUE(da.ok() && db.ok()) << t.name;
    EXPECT_TRUE(da->bytes == db->bytes) << t.name;
    raw += t.tensor.bytes.size();
    q += a->frame.size();
    zstd += b->frame.size();
  }
  // Context and prediction beat a general-purpose coder on quantised KV codes.
  EXPECT_LT(q, zstd) << "qhuff " << static_cast<double>(raw) / q << "x vs zstd(1) "
                     << static_cast<double>(raw) / zstd << "x";
}

TEST(QhuffStageTest, SymbolsAbove63AreRejected) {
  // A stream whose symbol plane holds 64 (past the escape), Huffman-coded and raw: the decoder
  // must refuse it whether it checks the plane's code or its bytes.
  std::vector<uint8_t> sym(5000);
  for (size_t i = 0; i < sym.size(); ++i) sym[i] = i % 97 == 5 ? 64 : static_cast<uint8_t>(i % 3);
  auto stage = StageRegistry::Get().Create(ParseSpec("qhuff").value()[0]);
  ASSERT_TRUE(stage.ok());
  const StreamDesc desc{ElemType::kU16, {1, 5000, 1}};
  for (const bool raw : {false, true}) {
    std::vector<uint8_t> coded;
    ByteWriter(&coded).Varint(sym.size());
    coded.insert(coded.end(), {2, 0, 0});  // mode 2, no prediction, k = 0
    if (raw) {
      coded.push_back(0);  // a raw plane
      coded.insert(coded.end(), sym.begin(), sym.end());
    } else {
      huffman::EncodePlane(sym.data(), 1, sym.size(), true, &coded);
      ASSERT_EQ(coded[5], 2) << "the plane should be Huffman-coded";
    }
    Streams in;
    in.push_back(Stream::Borrow({ElemType::kOpaque, {}}, coded));
    Streams out;
    const absl::Status st = (*stage)->Decode(in, {desc}, &out);
    EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss) << st;
    EXPECT_NE(st.message().find("symbol out of range"), std::string::npos) << st;
  }
}

TEST(QhuffStageTest, CorruptStreamsAreRejected) {
  Tensor t = testing::RandomBitsTensor(DType::kFP16, {4, 64, 16}, 5);
  // Small codes, so that the stream is coded rather than stored raw.
  for (size_t i = 1; i < t.bytes.size(); i += 2) t.bytes[i] = t.bytes[i] % 3;
  testing::ExpectCorruptionIsSafe("qhuff", t);
  synth::LlamaShape shape;
  shape.kv_heads = 2, shape.head_dim = 8, shape.tokens = 300;
  testing::ExpectCorruptionIsSafe("uquant(0.05)+qhuff", synth::LlamaKv(shape, 3, Kind::kKey));
  const Geometry g{2, 40000, 4};
  auto v = Codes(g, 5.0, 2, 30, 9);
  Tensor big;
  big.meta.dtype = DType::kFP16;
  big.meta.shape = {2, 40000, 4};
  big.bytes = U16Bytes(v);
  testing::ExpectCorruptionIsSafe("qhuff", big, true, 120);
}

}  // namespace
}  // namespace kvcomp

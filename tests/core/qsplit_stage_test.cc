// qsplit and the block-quantised dtypes (Q8_0, Q4_0): bit-exact on every byte pattern and on
// real caches quantised as ggml does, the documented stream layout, and the refusals: lossy
// specs and stages that take no blocks.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "tests/core/lossless_test_util.h"
#include "tests/tools/examples.h"

namespace kvcomp {
namespace {

using testing::ExpectRoundTrip;
using testing::RandomBitsTensor;

const char* kBlockSpecs[] = {"qsplit+huff",       "qsplit+rans",     "qsplit+cm", "qsplit+qhuff",
                             "qsplit+zstd(3)",    "zstd(3)",         "lossless",  "lossless-max",
                             "qsplit+delta+huff", "qsplit+gear+huff"};

TEST(QsplitStageTest, BitExactOnEveryBytePattern) {
  const std::vector<std::vector<int64_t>> shapes = {{0, 4},   {1, 1},     {7, 4},   {100, 4},
                                                    {513, 3}, {4, 37, 2}, {2, 0, 5}};
  uint32_t seed = 1;
  for (DType dtype : {DType::kQ8_0, DType::kQ4_0}) {
    for (Layout layout : {Layout::kTokenMajor, Layout::kHeadMajor}) {
      for (const auto& shape : shapes) {
        for (const char* spec : kBlockSpecs) {
          ++seed;
          ExpectRoundTrip(spec, RandomBitsTensor(dtype, shape, seed, layout),
                          absl::StrCat(DTypeName(dtype), " ", LayoutName(layout), " #", seed));
        }
      }
    }
  }
}

// Real caches (../shared/kv, head_dim 8) laid out token-major as [tokens, heads x dim], four
// rows of 8 values to a block of 32 (the blocks of a head_dim-32 model would hold one head).
TEST(QsplitStageTest, RealCachesQuantisedAsGgmlDoesCompressLosslessly) {
  if (!testing::HaveSharedKv()) GTEST_SKIP() << "../shared/kv is absent";
  for (DType to : {DType::kQ8_0, DType::kQ4_0}) {
    std::map<std::string, uint64_t> sizes;
    uint64_t raw = 0;
    for (const auto& t : testing::LoadSharedKv(DType::kFP16)) {
      const auto& s = t.tensor.meta.shape;  // [heads, tokens, dim]
      Tensor tm = t.tensor;
      tm.meta.layout = Layout::kTokenMajor;
      tm.meta.shape = {s[1], s[0] * s[2]};
      for (int64_t h = 0; h < s[0]; ++h) {
        for (int64_t k = 0; k < s[1]; ++k) {
          std::memcpy(&tm.bytes[(k * s[0] + h) * s[2] * 2],
                      &t.tensor.bytes[(h * s[1] + k) * s[2] * 2], s[2] * 2);
        }
      }
      const Tensor q = tools::QuantiseAsGgml(tm, to);
      raw += q.bytes.size();
      for (const char* spec : {"lossless", "lossless-max", "zstd(3)"}) {
        auto codec = MakeCodec(spec);
        ASSERT_TRUE(codec.ok());
        auto out = (*codec)->Compress(q.view());
        ASSERT_TRUE(out.ok()) << out.status();
        EXPECT_TRUE(out->report.lossless);
        auto back = Decompress(out->frame);
        ASSERT_TRUE(back.ok()) << back.status();
        EXPECT_TRUE(back->bytes == q.bytes) << spec << " on " << t.name;
        sizes[spec] += out->frame.size();
      }
    }
    // Split apart, the scales and quants are coded better than the interleaved blocks by zstd
    // (measured: Q8_0 1.27x against 1.16x, Q4_0 1.35x against 1.29x; lossless-max 1.28 / 1.46).
    EXPECT_GT(static_cast<double>(raw) / sizes["lossless"], 1.2) << DTypeName(to);
    EXPECT_LT(sizes["lossless"], sizes["zstd(3)"]) << DTypeName(to);
    EXPECT_LE(sizes["lossless-max"], sizes["lossless"]) << DTypeName(to);
  }
}

TEST(QsplitStageTest, StreamsAreScalesThenZigzagQuantsInValueOrder) {
  auto stage = StageRegistry::Get().Create(*ParseSpec("qsplit").value().begin());
  ASSERT_TRUE(stage.ok());
  // Q8_0: one block, d = 0x3c00 (1.0), q = 0, -1, 1, -128, 127, ...
  std::vector<uint8_t> q8(34, 0);
  q8[0] = 0x00, q8[1] = 0x3c;
  const int8_t qs[] = {0, -1, 1, -128, 127};
  for (int j = 0; j < 5; ++j) q8[2 + j] = static_cast<uint8_t>(qs[j]);
  // Q4_0: one block, nibbles 0 and 15 in byte 0 (values 0 and 16), 8 and 9 in byte 1.
  std::vector<uint8_t> q4(18, 0x88);
  q4[0] = 0x34, q4[1] = 0x12, q4[2] = 0xf0, q4[3] = 0x98;
  Streams in, out;
  in.push_back(Stream::Borrow(StreamDesc{ElemType::kQ8_0, Geometry{1, 1, 1}}, q8));
  in.push_back(Stream::Borrow(StreamDesc{ElemType::kQ4_0, Geometry{1, 1, 1}}, q4));
  auto plan = PlanStage(**stage, {StreamDesc{ElemType::kQ8_0, Geometry{1, 1, 1}},
                                  StreamDesc{ElemType::kQ4_0, Geometry{1, 1, 1}}});
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->size(), 4u);
  EXPECT_EQ((*plan)[0].type, ElemType::kF16);
  EXPECT_EQ((*plan)[1].type, ElemType::kU8);
  EXPECT_EQ((*plan)[1].geom.cols, 32u);
  ASSERT_TRUE((*stage)->Encode(in, &out).ok());
  ASSERT_EQ(out.size(), 4u);
  auto bytes = [&](int i) {
    return std::vector<uint8_t>(out[i].data().begin(), out[i].data().end());
  };
  EXPECT_EQ(bytes(0), (std::vector<uint8_t>{0x00, 0x3c}));
  const std::vector<uint8_t> q8z = bytes(1);
  EXPECT_EQ(std::vector<uint8_t>(q8z.begin(), q8z.begin() + 6),
            (std::vector<uint8_t>{0, 1, 2, 255, 254, 0}));
  EXPECT_EQ(bytes(2), (std::vector<uint8_t>{0x34, 0x12}));
  const std::vector<uint8_t> q4z = bytes(3);
  EXPECT_EQ(q4z[0], 15);   // nibble 0: q = -8
  EXPECT_EQ(q4z[16], 14);  // nibble 15: q = 7
  EXPECT_EQ(q4z[1], 0);    // nibble 8: q = 0
  EXPECT_EQ(q4z[17], 2);   // nibble 9: q = 1
  EXPECT_EQ(q4z[5], 0);
}

TEST(QsplitStageTest, Q4CodesAbove15AreCorrupt) {
  auto stage = StageRegistry::Get().Create(*ParseSpec("qsplit").value().begin());
  ASSERT_TRUE(stage.ok());
  const StreamDesc want{ElemType::kQ4_0, Geometry{1, 2, 1}};
  std::vector<uint8_t> scales(4, 0), quants(64, 3);
  Streams enc, dec;
  enc.push_back(Stream::Own(StreamDesc{ElemType::kF16, Geometry{1, 2, 1}}, scales));
  quants[40] = 16;
  enc.push_back(Stream::Own(StreamDesc{ElemType::kU8, Geometry{1, 2, 32}}, quants));
  const absl::Status st = (*stage)->Decode(enc, {&want, 1}, &dec);
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss) << st;
}

TEST(QsplitStageTest, CorruptionIsSafe) {
  testing::ExpectCorruptionIsSafe("qsplit+huff", RandomBitsTensor(DType::kQ8_0, {40, 4}, 3));
  testing::ExpectCorruptionIsSafe("qsplit+qhuff", RandomBitsTensor(DType::kQ4_0, {40, 4}, 4));
}

TEST(BlockDTypeTest, LossyAndBlindStagesAreRefusedByName) {
  const Tensor q = RandomBitsTensor(DType::kQ8_0, {16, 4}, 9, Layout::kTokenMajor);
  for (const char* spec :
       {"uquant(0.01)+qhuff", "quant(bits=8)+zstd(3)", "cast(fp16)+zstd(1)", "bounded(cos=0.99)",
        "qsplit+uquant(0.01)+huff", "mixed(1,lossless,bounded(cos=0.999))"}) {
    auto codec = MakeCodec(spec);
    ASSERT_TRUE(codec.ok()) << spec;
    TensorView v = q.view();
    Tensor layer1 = q;
    layer1.meta.layer = 1;  // mixed(1, ...) sends layer 1 to its lossy spec
    auto out = (*codec)->Compress(absl::string_view(spec).find("mixed") == 0 ? layer1.view() : v);
    ASSERT_FALSE(out.ok()) << spec;
    EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument) << out.status();
    EXPECT_NE(out.status().message().find("losslessly only"), std::string::npos) << out.status();
  }
  for (const char* spec : {"huff", "planes+zstd(1)", "gear+rans", "dedupe+huff", "delta+huff",
                           "protected(sink=2,recent=2,lossless)"}) {
    auto codec = MakeCodec(spec);
    ASSERT_TRUE(codec.ok()) << spec;
    auto out = (*codec)->Compress(q.view());
    ASSERT_FALSE(out.ok()) << spec;
    EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument) << out.status();
    EXPECT_NE(out.status().message().find("takes no q8_0 blocks"), std::string::npos)
        << out.status();
  }
  auto lossless = MakeCodec("lossless");
  ASSERT_TRUE(lossless.ok());
  auto out = (*lossless)->Compress(q.view());
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->report.spec, "qsplit+qhuff");  // random blocks: no duplicate rows
}

TEST(BlockDTypeTest, NamesSizesAndParsing) {
  EXPECT_EQ(DTypeSize(DType::kQ8_0), 34u);
  EXPECT_EQ(DTypeSize(DType::kQ4_0), 18u);
  EXPECT_EQ(DTypeName(DType::kQ8_0), "Q8_0");
  EXPECT_EQ(ParseDType("q4_0").value(), DType::kQ4_0);
  EXPECT_TRUE(IsBlockQuantized(DType::kQ8_0));
  EXPECT_FALSE(IsBlockQuantized(DType::kBF16));
  EXPECT_EQ(ValuesPerElement(DType::kQ4_0), 32u);
  EXPECT_TRUE(IsValidDType(5));
  EXPECT_FALSE(IsValidDType(6));
}

}  // namespace
}  // namespace kvcomp

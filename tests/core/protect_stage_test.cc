// protect(sink, recent): the first and last tokens of every plane stay bit-exact inside a
// lossy pipeline, the stage alone is lossless everywhere, and the `protected(...)` wrapper
// runs any spec on the middle tokens.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "core/kvcomp/codec.h"
#include "core/kvcomp/error_metrics.h"
#include "tests/core/lossless_test_util.h"

namespace kvcomp {
namespace {

// Finite values, an outlier in the first token of each plane (an attention sink).
Tensor Finite(DType dtype, std::vector<int64_t> shape, uint32_t seed,
              Layout layout = Layout::kHeadMajor) {
  Tensor t;
  t.meta.dtype = dtype;
  t.meta.layout = layout;
  t.meta.shape = std::move(shape);
  const uint64_t n = t.meta.NumElements();
  std::vector<float> v(n);
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0, 1);
  for (auto& x : v) x = g(rng);
  const Geometry geom = GeometryOf(t.meta);
  for (uint64_t p = 0; geom.rows > 0 && geom.cols > 0 && p < geom.planes; ++p) {
    v[p * geom.rows * geom.cols] = 60;
  }
  t.bytes.resize(t.meta.NumBytes());
  if (n == 0) return t;
  if (dtype == DType::kFP32) {
    std::memcpy(t.bytes.data(), v.data(), t.bytes.size());
  } else {
    std::vector<uint16_t> h(n);
    dtype == DType::kFP16 ? FloatToHalf(v.data(), h.data(), n) : FloatToBf16(v.data(), h.data(), n);
    std::memcpy(t.bytes.data(), h.data(), t.bytes.size());
  }
  return t;
}

struct Coded {
  CompressedTensor out;
  Tensor back;
};

Coded RoundTrip(const std::string& spec, const Tensor& t) {
  Coded c;
  auto codec = MakeCodec(spec);
  EXPECT_TRUE(codec.ok()) << spec << ": " << codec.status();
  if (!codec.ok()) return c;
  auto out = (*codec)->Compress(t.view());
  EXPECT_TRUE(out.ok()) << spec << " on " << t.meta.ShapeString() << ": " << out.status();
  if (!out.ok()) return c;
  c.out = std::move(*out);
  auto back = Decompress(c.out.frame);
  EXPECT_TRUE(back.ok()) << spec << ": " << back.status();
  if (back.ok()) c.back = std::move(*back);
  EXPECT_EQ(c.back.meta.shape, t.meta.shape) << spec;
  EXPECT_EQ(c.back.bytes.size(), t.bytes.size()) << spec;
  return c;
}

// Counts, per plane, the rows among the first `sink` and last `recent` that differ from the
// original (want 0), and the middle rows that differ (want > 0 when the middle is lossy).
struct RowDiffs {
  uint64_t protected_rows = 0;
  uint64_t middle_rows = 0;
  uint64_t changed_protected = 0;
  uint64_t changed_middle = 0;
};

RowDiffs CompareRows(const Tensor& a, const Tensor& b, uint64_t sink, uint64_t recent) {
  RowDiffs d;
  const Geometry g = GeometryOf(a.meta);
  const size_t row = g.cols * DTypeSize(a.meta.dtype);
  if (b.bytes.size() != a.bytes.size()) return d;
  const uint64_t head = std::min(sink, g.rows), tail = std::min(recent, g.rows - head);
  for (uint64_t p = 0; row > 0 && p < g.planes; ++p) {
    for (uint64_t r = 0; r < g.rows; ++r) {
      const size_t at = (p * g.rows + r) * row;
      const bool same = std::memcmp(a.bytes.data() + at, b.bytes.data() + at, row) == 0;
      if (r < head || r >= g.rows - tail) {
        ++d.protected_rows;
        d.changed_protected += !same;
      } else {
        ++d.middle_rows;
        d.changed_middle += !same;
      }
    }
  }
  return d;
}

TEST(ProtectStageTest, BitExactEverywhere) {
  testing::ExpectLosslessEverywhere("protect(sink=4,recent=3)");
  testing::ExpectLosslessEverywhere("protect(sink=4,recent=3)+zstd(1)");
  testing::ExpectLosslessEverywhere("protect(sink=0,recent=0)+delta+huff");
  testing::ExpectLosslessEverywhere("protect(sink=1,recent=1000)+gear+zstd(1)");  // all kept
  testing::ExpectLosslessEverywhere("protect(sink=2147483647,recent=2147483647)+huff");
  testing::ExpectLosslessEverywhere("dedupe+protect(sink=2,recent=5)+planes+huff");
}

TEST(ProtectStageTest, SplitsRowsPerPlane) {
  auto stage = StageRegistry::Get().Create(ParseSpec("protect(sink=1,recent=2)").value()[0]);
  ASSERT_TRUE(stage.ok()) << stage.status();
  EXPECT_EQ((*stage)->Spec(), "protect(sink=1,recent=2)");
  // 2 planes x 5 rows x 1 col of u16 words 0..9.
  std::vector<uint16_t> w(10);
  for (int i = 0; i < 10; ++i) w[i] = static_cast<uint16_t>(i);
  std::vector<uint8_t> bytes(20);
  std::memcpy(bytes.data(), w.data(), 20);
  const StreamDesc d{ElemType::kF16, Geometry{2, 5, 1}};
  auto plan = (*stage)->Plan({d});
  ASSERT_TRUE(plan.ok());
  ASSERT_EQ(plan->size(), 2u);
  EXPECT_EQ((*plan)[0].type, ElemType::kU16);  // raw, so lossy stages pass it on
  EXPECT_EQ((*plan)[1].type, ElemType::kF16);
  EXPECT_EQ((*plan)[1].geom, (Geometry{2, 2, 1}));
  Streams in, out;
  in.push_back(Stream::Borrow(d, bytes));
  ASSERT_TRUE((*stage)->Encode(in, &out).ok());
  ASSERT_EQ(out.size(), 2u);
  auto words = [](const Stream& s) {
    std::vector<uint16_t> v(s.data().size() / 2);
    if (!v.empty()) std::memcpy(v.data(), s.data().data(), s.data().size());
    return v;
  };
  EXPECT_EQ(words(out[0]), (std::vector<uint16_t>{0, 3, 4, 5, 8, 9}));
  EXPECT_EQ(words(out[1]), (std::vector<uint16_t>{1, 2, 6, 7}));
  // Overlapping windows clamp: sink takes what there is, recent the rest.
  auto all = StageRegistry::Get().Create(ParseSpec("protect(sink=4,recent=4)").value()[0]);
  ASSERT_TRUE(all.ok());
  auto plan2 = (*all)->Plan({d});
  ASSERT_TRUE(plan2.ok());
  EXPECT_EQ((*plan2)[0].geom, (Geometry{2, 5, 1}));
  EXPECT_EQ((*plan2)[1].geom, (Geometry{2, 0, 1}));
}

// Empty tensors with huge other dimensions: no loop over their planes or rows.
TEST(ProtectStageTest, HugeEmptyGeometries) {
  for (std::vector<int64_t> shape :
       {std::vector<int64_t>{int64_t{1} << 40, 0, 8}, std::vector<int64_t>{4, int64_t{1} << 40, 0},
        std::vector<int64_t>{0, int64_t{1} << 40, 8}}) {
    Tensor t;
    t.meta.shape = shape;
    for (const char* spec : {"protect(sink=4,recent=8)+zstd(1)", "protect(sink=4,recent=8)+huff",
                             "protected(sink=4,recent=8,bounded(cos=0.99))"}) {
      const Coded c = RoundTrip(spec, t);
      EXPECT_TRUE(c.out.report.lossless) << spec;
    }
  }
}

TEST(ProtectStageTest, RejectsBadParams) {
  EXPECT_FALSE(MakeCodec("protect(sink=-1)").ok());
  EXPECT_FALSE(MakeCodec("protect(recent=2147483648)").ok());
  EXPECT_FALSE(MakeCodec("protect(window=3)").ok());
  // A lossy stage still needs a float stream: after gear there is none.
  auto c = MakeCodec("gear+quant(bits=8)");
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE((*c)->Compress(Finite(DType::kFP16, {2, 8, 4}, 1).view()).ok());
}

// Every lossy stage passes protect's exact rows through, whatever the dtype, layout or shape,
// including a middle of 0 rows.
TEST(ProtectStageTest, LossyStagesKeepProtectedRowsExact) {
  const std::vector<std::string> lossy = {
      "quant(bits=3,group=channel)", "quant(bits=4,group=token)",
      "quant(bits=5,group=block,block=7,clip=0.9)", "uquant(step=0.25)",
      "blocknorm(block=16,topk=0.05,bits=3)"};
  const std::vector<std::vector<int64_t>> shapes = {{4, 0, 8},    {1, 1, 1},  {3, 1, 7},   {5},
                                                    {2, 3, 5, 7}, {4, 37, 8}, {2, 100, 16}};
  uint32_t seed = 1;
  for (const std::string& q : lossy) {
    for (DType dtype : {DType::kFP16, DType::kBF16, DType::kFP32}) {
      for (Layout layout : {Layout::kHeadMajor, Layout::kTokenMajor}) {
        for (const auto& shape : shapes) {
          if (layout == Layout::kTokenMajor && shape.size() < 2) continue;
          for (auto [sink, recent] : {std::pair<int, int>{4, 8}, {0, 3}, {40, 100}}) {
            const Tensor t = Finite(dtype, shape, ++seed, layout);
            const std::string spec = "protect(sink=" + std::to_string(sink) +
                                     ",recent=" + std::to_string(recent) + ")+" + q + "+zstd(1)";
            const Coded c = RoundTrip(spec, t);
            const RowDiffs d = CompareRows(t, c.back, sink, recent);
            EXPECT_EQ(d.changed_protected, 0u) << spec << " " << DTypeName(dtype) << " "
                                               << LayoutName(layout) << " " << t.meta.ShapeString();
            if (d.middle_rows == 0) {
              EXPECT_TRUE(c.back.bytes == t.bytes) << spec << " " << t.meta.ShapeString();
              EXPECT_TRUE(c.out.report.lossless) << spec << " " << t.meta.ShapeString();
            }
          }
        }
      }
    }
  }
}

// The lowest cosine over rows (one token of one plane) between `a` and its decoded `b`.
double WorstRowCosine(const Tensor& a, const Tensor& b) {
  const Geometry g = GeometryOf(a.meta);
  const uint64_t n = a.meta.NumElements();
  if (b.bytes.size() != a.bytes.size() || n == 0) return 1;
  std::vector<float> x(n), y(n);
  ToFloat(a.meta.dtype, a.bytes.data(), x.data(), n);
  ToFloat(a.meta.dtype, b.bytes.data(), y.data(), n);
  double worst = 1;
  for (uint64_t r = 0; r < g.planes * g.rows; ++r) {
    double xy = 0, xx = 0, yy = 0;
    for (uint64_t c = 0; c < g.cols; ++c) {
      const double u = x[r * g.cols + c], v = y[r * g.cols + c];
      xy += u * v;
      xx += u * u;
      yy += v * v;
    }
    if (xx > 0 && yy > 0) worst = std::min(worst, xy / std::sqrt(xx * yy));
  }
  return worst;
}

const testing::NamedTensor* FirstRealTensor(DType dtype) {
  static const auto* kv = new std::vector<testing::NamedTensor>(testing::LoadSharedKv(dtype));
  for (const auto& t : *kv) {
    if (GeometryOf(t.tensor.meta).rows > 64) return &t;
  }
  return nullptr;
}

TEST(ProtectStageTest, RealKvProtectedRowsExactMiddleLossy) {
  const testing::NamedTensor* t = FirstRealTensor(DType::kFP16);
  if (t == nullptr) GTEST_SKIP() << "../shared/kv is absent";
  const Coded plain = RoundTrip("quant(bits=4)+zstd(3)", t->tensor);
  const Coded prot = RoundTrip("protect(sink=4,recent=32)+quant(bits=4)+zstd(3)", t->tensor);
  const RowDiffs d = CompareRows(t->tensor, prot.back, 4, 32);
  EXPECT_GT(d.protected_rows, 0u);
  EXPECT_EQ(d.changed_protected, 0u) << t->name;
  EXPECT_GT(d.changed_middle, d.middle_rows / 2) << t->name << ": the middle should be lossy";
  ASSERT_TRUE(plain.out.report.error && prot.out.report.error);
  // The report measures the whole decoded tensor.
  const ErrorStats e = MeasureError(t->tensor.view(), prot.back.view());
  EXPECT_DOUBLE_EQ(prot.out.report.error->cosine, e.cosine);
  EXPECT_DOUBLE_EQ(prot.out.report.error->max_abs, e.max_abs);
  EXPECT_LT(prot.out.report.error->mae, plain.out.report.error->mae) << t->name;
  EXPECT_GT(prot.out.report.error->cosine, plain.out.report.error->cosine) << t->name;
  EXPECT_EQ(prot.out.report.spec.rfind("protect(sink=4,recent=32)+quant(bits=4,", 0), 0u)
      << prot.out.report.spec;
  std::printf(
      "[ figure ] %s: quant(bits=4)+zstd(3) ratio %.3f cos %.6f worst row cos %.6f; "
      "with protect(sink=4,recent=32) ratio %.3f cos %.6f worst row cos %.6f\n",
      t->name.c_str(), plain.out.report.ratio(), plain.out.report.error->cosine,
      WorstRowCosine(t->tensor, plain.back), prot.out.report.ratio(), prot.out.report.error->cosine,
      WorstRowCosine(t->tensor, prot.back));
}

// Every real tensor: protected rows exact; totals for the record.
TEST(ProtectStageTest, AllRealKv) {
  if (!testing::HaveSharedKv()) GTEST_SKIP() << "../shared/kv is absent";
  const std::vector<std::string> specs = {
      "quant(bits=4)+zstd(3)", "protect(sink=4,recent=32)+quant(bits=4)+zstd(3)",
      "bounded(cos=0.9999)", "protected(sink=4,recent=32,bounded(cos=0.9999))"};
  for (const std::string& spec : specs) {
    uint64_t raw = 0, comp = 0;
    double worst_cos = 1, worst_row = 1;
    for (const auto& t : testing::LoadSharedKv(DType::kFP16)) {
      const Coded c = RoundTrip(spec, t.tensor);
      if (spec.rfind("protect", 0) == 0) {
        EXPECT_EQ(CompareRows(t.tensor, c.back, 4, 32).changed_protected, 0u) << t.name;
      }
      raw += t.tensor.bytes.size();
      comp += c.out.frame.size();
      if (c.out.report.error) worst_cos = std::min(worst_cos, c.out.report.error->cosine);
      worst_row = std::min(worst_row, WorstRowCosine(t.tensor, c.back));
    }
    std::printf(
        "[ figure ] all FP16 KV, %s: ratio %.3f, worst tensor cos %.6f, worst row cos %.6f\n",
        spec.c_str(), static_cast<double>(raw) / comp, worst_cos, worst_row);
  }
}

TEST(ProtectStageTest, WrapperRunsAnySpecOnTheMiddle) {
  const Tensor t = Finite(DType::kFP16, {4, 200, 16}, 7);
  // A preset: bounded tunes its step on the middle; the frame prepends protect.
  const Coded b = RoundTrip("protected(sink=4,recent=16,bounded(cos=0.999))", t);
  EXPECT_EQ(b.out.report.spec.rfind("protect(sink=4,recent=16)+uquant(", 0), 0u)
      << b.out.report.spec;
  EXPECT_EQ(CompareRows(t, b.back, 4, 16).changed_protected, 0u);
  ASSERT_TRUE(b.out.report.error.has_value());
  EXPECT_GE(b.out.report.error->cosine, 0.999);
  const ErrorStats e = MeasureError(t.view(), b.back.view());
  EXPECT_DOUBLE_EQ(b.out.report.error->cosine, e.cosine);
  // A pipeline, a lossless preset, a policy.
  const Coded q = RoundTrip("protected(recent=8,quant(bits=4)+zstd(1))", t);
  EXPECT_EQ(q.out.report.spec.rfind("protect(sink=4,recent=8)+quant(bits=4,", 0), 0u)
      << q.out.report.spec;
  EXPECT_EQ(CompareRows(t, q.back, 4, 8).changed_protected, 0u);
  const Coded l = RoundTrip("protected(sink=2,recent=2,lossless)", t);
  EXPECT_TRUE(l.back.bytes == t.bytes);
  EXPECT_TRUE(l.out.report.lossless);
  Tensor layer5 = t;
  layer5.meta.layer = 5;
  const Coded m =
      RoundTrip("protected(sink=1,recent=1,mixed(2,zstd(1),quant(bits=6)+zstd(1)))", layer5);
  EXPECT_EQ(m.out.report.spec.rfind("protect(sink=1,recent=1)+quant(bits=6,", 0), 0u)
      << m.out.report.spec;
  // Nested inside a policy, and everything protected.
  const Coded n = RoundTrip("mixed(1,lossless,protected(sink=300,bounded(cos=0.99)))", layer5);
  EXPECT_TRUE(n.back.bytes == t.bytes);
  // Token-major, BF16, and an empty tensor.
  const Tensor tm = Finite(DType::kBF16, {100, 4, 8}, 9, Layout::kTokenMajor);
  const Coded tmc = RoundTrip("protected(sink=4,recent=8,bounded(rel_mae=0.05))", tm);
  EXPECT_EQ(CompareRows(tm, tmc.back, 4, 8).changed_protected, 0u);
  const Tensor empty = Finite(DType::kFP32, {4, 0, 8}, 3);
  const Coded ec = RoundTrip("protected(sink=4,recent=8,bounded(cos=0.99))", empty);
  EXPECT_TRUE(ec.out.report.lossless);
}

TEST(ProtectStageTest, WrapperRejectsBadSpecs) {
  EXPECT_FALSE(MakeCodec("protected(sink=4)").ok());
  EXPECT_FALSE(MakeCodec("protected(sink=-4,lossless)").ok());
  EXPECT_FALSE(MakeCodec("protected(lossless,lossless)").ok());
  EXPECT_FALSE(MakeCodec("protected(window=3,lossless)").ok());
  EXPECT_FALSE(MakeCodec("protected(sink=4,nosuchstage)").ok());
  EXPECT_FALSE(MakeCodec("protected(sink=4,lossless)+zstd(1)").ok());
  auto c = MakeCodec("protected(sink=4,recent=64,bounded(cos=0.9999))");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)->Spec(), "protected(sink=4,recent=64,bounded(cos=0.9999))");
}

TEST(ProtectStageTest, CorruptionIsSafe) {
  const Tensor t = testing::SpecialsTensor(DType::kFP16, {2, 50, 8}, 3);
  testing::ExpectCorruptionIsSafe("protect(sink=3,recent=5)", t, /*expect_rejections=*/false);
  testing::ExpectCorruptionIsSafe("protect(sink=30,recent=30)", t, /*expect_rejections=*/false);
  testing::ExpectCorruptionIsSafe("protect(sink=3,recent=5)+zstd(1)",
                                  testing::SpecialsTensor(DType::kFP32, {2, 50, 8}, 4));
  const Tensor f = Finite(DType::kBF16, {2, 50, 8}, 5);
  testing::ExpectCorruptionIsSafe("protect(sink=3,recent=5)+quant(bits=4)", f,
                                  /*expect_rejections=*/false);
  testing::ExpectCorruptionIsSafe("protect(sink=3,recent=5)+uquant(step=0.1)", f,
                                  /*expect_rejections=*/false);
  testing::ExpectCorruptionIsSafe("protect(sink=3,recent=5)+blocknorm", f,
                                  /*expect_rejections=*/false);
}

// Whole frames: damaged bytes anywhere give an error or a tensor, never a crash.
TEST(ProtectStageTest, DamagedFramesAreRefused) {
  const Tensor t = Finite(DType::kFP16, {2, 40, 8}, 11);
  auto codec = MakeCodec("protect(sink=4,recent=4)+quant(bits=4)+zstd(1)");
  ASSERT_TRUE(codec.ok());
  auto out = (*codec)->Compress(t.view());
  ASSERT_TRUE(out.ok()) << out.status();
  std::mt19937 rng(5);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<uint8_t> f = out->frame;
    if (trial % 3 == 0) {
      f.resize(rng() % f.size());
    } else {
      f[rng() % f.size()] ^= static_cast<uint8_t>(1 << (rng() % 8));
    }
    auto back = Decompress(f);
    if (back.ok()) {
      EXPECT_EQ(back->bytes.size(), t.bytes.size());
    }
  }
}

}  // namespace
}  // namespace kvcomp

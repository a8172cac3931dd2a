// Lossy stages and the bounded preset: errors stay within what each stage promises, and a
// requested bound always holds on the decoded tensor.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "core/kvcomp/codec.h"
#include "core/kvcomp/error_bounds.h"
#include "core/kvcomp/registry.h"
#include "core/kvcomp/spec.h"
#include "core/kvcomp/stages/uquant_refusal.h"
#include "tests/core/test_data.h"

namespace kvcomp {
namespace {

Tensor Gaussian(DType dtype, std::vector<int64_t> shape, uint32_t seed, float scale = 1.0f) {
  Tensor t;
  t.meta.dtype = dtype;
  t.meta.shape = std::move(shape);
  const uint64_t n = t.meta.NumElements();
  std::vector<float> v(n);
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0, scale);
  for (auto& x : v) x = g(rng);
  if (n > 3) v[3] = 40 * scale;  // an outlier
  t.bytes.resize(t.meta.NumBytes());
  if (dtype == DType::kFP32) {
    std::memcpy(t.bytes.data(), v.data(), t.bytes.size());
  } else {
    std::vector<uint16_t> h(n);
    dtype == DType::kFP16 ? FloatToHalf(v.data(), h.data(), n) : FloatToBf16(v.data(), h.data(), n);
    std::memcpy(t.bytes.data(), h.data(), t.bytes.size());
  }
  return t;
}

ErrorStats RoundTripError(const std::string& spec, const Tensor& t,
                          CompressedTensor* out = nullptr) {
  auto codec = MakeCodec(spec);
  EXPECT_TRUE(codec.ok()) << spec << ": " << codec.status();
  auto c = (*codec)->Compress(t.view());
  EXPECT_TRUE(c.ok()) << spec << ": " << c.status();
  auto back = Decompress(c->frame);
  EXPECT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->meta.dtype, t.meta.dtype);
  const ErrorStats e = MeasureError(t.view(), back->view());
  EXPECT_FALSE(c->report.lossless) << spec;
  EXPECT_TRUE(c->report.error.has_value());
  if (c->report.error) {
    EXPECT_DOUBLE_EQ(c->report.error->max_abs, e.max_abs);
  }
  if (out) *out = std::move(*c);
  return e;
}

TEST(UniformQuantTest, ErrorIsHalfAStep) {
  for (DType dtype : {DType::kFP32, DType::kFP16, DType::kBF16}) {
    const Tensor t = Gaussian(dtype, {4, 300, 8}, 1);
    const ErrorStats e = RoundTripError("uquant(0.01)+zstd(3)", t);
    // Half a step, plus the output dtype's own rounding at |x| <= 40.
    const double dtype_ulp = dtype == DType::kFP32 ? 0 : dtype == DType::kFP16 ? 0.016 : 0.125;
    EXPECT_LE(e.max_abs, 0.005 + dtype_ulp + 1e-6) << DTypeName(dtype);
    EXPECT_GT(e.max_abs, 0) << DTypeName(dtype);
  }
}

// Near FP16's largest value a coarse step's nearest multiple (22 x 3000 = 66000) is past it, and
// FP16 would store infinity: that code moves a step toward zero (found by fuzz_roundtrip).
// The pipeline decodes uquant from the pieces qhuff hands over as it makes them (see
// Stage::DecodeStreaming); that must give what the two stages give decoded one after the
// other. Streams of several of qhuff's chunks, cut mid-row, with and without a zero tail.
TEST(UniformQuantTest, FusedDecodeEqualsStageByStage) {
  auto uquant = StageRegistry::Get().Create(ParseSpec("uquant(0.01)").value()[0]).value();
  auto qhuff = StageRegistry::Get().Create(ParseSpec("qhuff").value()[0]).value();
  auto codec = MakeCodec("uquant(0.01)+qhuff").value();
  for (DType dtype : {DType::kFP16, DType::kBF16, DType::kFP32}) {
    for (bool zero_tail : {false, true}) {
      SCOPED_TRACE(::testing::Message() << DTypeName(dtype) << (zero_tail ? ", zero tail" : ""));
      Tensor t = Gaussian(dtype, {2, 5003, 7}, 11);
      if (zero_tail) {
        std::fill(t.bytes.begin() + static_cast<std::ptrdiff_t>(t.bytes.size() * 3 / 5),
                  t.bytes.end(), uint8_t{0});
      }
      const StreamDesc desc{ElemTypeOf(dtype), GeometryOf(t.meta)};
      Streams in, codes, coded, codes_back, back;
      in.push_back(Stream::Borrow(desc, t.bytes));
      ASSERT_TRUE(uquant->Encode(in, &codes).ok());
      ASSERT_TRUE(qhuff->Encode(codes, &coded).ok());
      ASSERT_TRUE(qhuff->Decode(coded, {codes[0].desc()}, &codes_back).ok());
      ASSERT_TRUE(uquant->Decode(codes_back, {desc}, &back).ok());
      auto frame = codec->Compress(t.view());
      ASSERT_TRUE(frame.ok()) << frame.status();
      auto fused = Decompress(frame->frame);
      ASSERT_TRUE(fused.ok()) << fused.status();
      EXPECT_TRUE(std::equal(fused->bytes.begin(), fused->bytes.end(), back[0].data().begin(),
                             back[0].data().end()));
    }
  }
}

TEST(UniformQuantTest, ValuesNearTheTypesLimitDecodeFinite) {
  const std::vector<float> v = {65504, -65504, 65000, 0, 1000, -64000, 12, 3};
  Tensor t;
  t.meta.dtype = DType::kFP16;
  t.meta.shape = {1, 1, static_cast<int64_t>(v.size())};
  std::vector<uint16_t> h(v.size());
  FloatToHalf(v.data(), h.data(), v.size());
  t.bytes.resize(2 * v.size());
  std::memcpy(t.bytes.data(), h.data(), t.bytes.size());
  const ErrorStats e = RoundTripError("uquant(3000)+zstd(1)", t);
  EXPECT_EQ(e.mismatched_nonfinite, 0u);
  EXPECT_EQ(e.max_abs, 65504 - 63008);  // 21 x 3000 in FP16 (a multiple of 32 there)
}

TEST(UniformQuantTest, TooFineAStepIsRefused) {
  const Tensor t = Gaussian(DType::kFP32, {1, 100, 8}, 2);
  auto codec = MakeCodec("uquant(1e-6)+zstd(1)");
  auto out = (*codec)->Compress(t.view());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(out.status().message().find("too fine"), std::string::npos) << out.status();
}

TEST(LossyTest, NonFiniteInputIsRefusedWithAReason) {
  Tensor t = Gaussian(DType::kFP32, {1, 10, 8}, 3);
  const float nan = NAN;
  std::memcpy(&t.bytes[4 * 7], &nan, 4);
  for (const char* spec : {"uquant(0.1)+zstd(1)", "quant(8)+zstd(1)", "blocknorm+zstd(1)"}) {
    auto out = (*MakeCodec(spec))->Compress(t.view());
    EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument) << spec;
    EXPECT_NE(out.status().message().find("not finite"), std::string::npos) << out.status();
  }
}

TEST(QuantTest, EveryGroupingStaysWithinHalfAStep) {
  const Tensor t = Gaussian(DType::kFP32, {2, 100, 16}, 4);
  for (const char* group : {"channel", "token", "block", "tensor"}) {
    for (int bits : {2, 8, 16}) {
      const std::string spec =
          std::string("quant(bits=") + std::to_string(bits) + ",group=" + group + ")+zstd(1)";
      const ErrorStats e = RoundTripError(spec, t);
      // The widest group spans at most the outlier (40) to the minimum (~-4).
      const double step = 45.0 / ((1 << bits) - 1);
      EXPECT_LE(e.max_abs, step / 2 * 1.0001) << spec;
    }
  }
}

TEST(QuantTest, ClipTradesOutliersForFinerSteps) {
  const Tensor t = Gaussian(DType::kFP32, {1, 400, 8}, 5);
  const ErrorStats plain = RoundTripError("quant(bits=6,group=tensor)+zstd(1)", t);
  const ErrorStats clipped = RoundTripError("quant(bits=6,group=tensor,clip=0.99)+zstd(1)", t);
  EXPECT_LT(clipped.mae, plain.mae);          // finer steps for the bulk
  EXPECT_GT(clipped.max_abs, plain.max_abs);  // the outlier is clipped
}

TEST(BlockNormTest, OutliersAreExactAndTheRestBounded) {
  for (DType dtype : {DType::kFP32, DType::kFP16}) {
    const Tensor t = Gaussian(dtype, {4, 100, 8}, 6);
    CompressedTensor c;
    const ErrorStats e = RoundTripError("blocknorm(block=128,topk=0.02,bits=10)+zstd(3)", t, &c);
    auto back = Decompress(c.frame);
    // Element 3 is the +40 outlier: kept bit-exact.
    EXPECT_EQ(std::memcmp(&back->bytes[3 * DTypeSize(dtype)], &t.bytes[3 * DTypeSize(dtype)],
                          DTypeSize(dtype)),
              0);
    EXPECT_LT(e.max_abs, 0.02);
    EXPECT_GT(e.cosine, 0.9999);
  }
}

TEST(BoundedTest, BoundsHoldOnEverySharedKvRunLooseToStrict) {
  if (!testing::HaveSharedKv()) GTEST_SKIP() << "../shared/kv is absent";
  const char* specs[] = {
      "bounded(cos=0.99)",
      "bounded(cos=0.999,rel_mae=0.05)",
      "bounded(cos=0.9999,rel_mae=0.01)",
      "bounded(cos=0.999999,max_abs=0.001)",
      "bounded(rel_rmse=0.02,snr_db=30)",
      "bounded(max_abs=0)",
  };
  for (DType dtype : {DType::kFP16, DType::kBF16, DType::kFP32}) {
    const auto tensors = testing::LoadSharedKv(dtype);
    for (const char* spec : specs) {
      auto codec = MakeCodec(spec);
      ASSERT_TRUE(codec.ok()) << codec.status();
      auto parsed = ParseSpec(spec);
      const ErrorBounds bounds = *ParseErrorBounds((*parsed)[0]);
      uint64_t raw = 0, packed = 0;
      for (const auto& t : tensors) {
        auto c = (*codec)->Compress(t.tensor.view());
        ASSERT_TRUE(c.ok()) << t.name << " " << spec << ": " << c.status();
        auto back = Decompress(c->frame);
        ASSERT_TRUE(back.ok()) << back.status();
        const ErrorStats e = MeasureError(t.tensor.view(), back->view());
        EXPECT_TRUE(bounds.Pass(e)) << t.name << " " << spec << ": " << bounds.Violations(e);
        // The reported error is the decoded tensor's, measured while encoding (uquant sums
        // MeasureError's chunks the same way): the same to the last bit.
        if (c->report.lossless) {
          EXPECT_TRUE(back->bytes == t.tensor.bytes) << t.name << " " << spec;
        } else {
          ASSERT_TRUE(c->report.error.has_value()) << t.name << " " << spec;
          const ErrorStats& r = *c->report.error;
          EXPECT_EQ(r.count, e.count) << t.name << " " << spec;
          EXPECT_EQ(r.rel_mae, e.rel_mae) << t.name << " " << spec;
          EXPECT_EQ(r.rmse, e.rmse) << t.name << " " << spec;
          EXPECT_EQ(r.cosine, e.cosine) << t.name << " " << spec;
          EXPECT_EQ(r.max_abs, e.max_abs) << t.name << " " << spec;
        }
        raw += c->report.raw_bytes;
        packed += c->report.compressed_bytes;
      }
      std::printf("%s %s: KV ratio %.3f\n", std::string(DTypeName(dtype)).c_str(), spec,
                  double(raw) / packed);
    }
  }
}

TEST(BoundedTest, RefusesWhenItCannotHoldAndFallbackIsNone) {
  Tensor t = Gaussian(DType::kFP32, {1, 10, 8}, 7);
  const float inf = INFINITY;
  std::memcpy(&t.bytes[0], &inf, 4);
  auto out = (*MakeCodec("bounded(cos=0.99,fallback=none)"))->Compress(t.view());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kFailedPrecondition) << out.status();
  auto ok = (*MakeCodec("bounded(cos=0.99)"))->Compress(t.view());
  ASSERT_TRUE(ok.ok());
  EXPECT_TRUE(ok->report.lossless);  // fell back to the lossless codec
}

// bounded first searches on a sample and takes the sample's largest value for the whole
// tensor's; a value outside the sample (index 1500 lies between the sample's first two blocks)
// that is not finite, or whose code would overflow at the step found, must still give a frame
// that meets the bounds, or the refusal, as if the whole tensor had been looked at.
TEST(BoundedTest, ValuesOutsideTheSearchSampleAreHonoured) {
  constexpr size_t kOutside = 1500;
  Tensor outlier = Gaussian(DType::kFP32, {1, 1000, 128}, 11);
  const float big = 100;
  std::memcpy(&outlier.bytes[4 * kOutside], &big, 4);
  for (const char* spec : {"bounded(max_abs=0.001)", "bounded(cos=0.999999,max_abs=0.0005)"}) {
    auto c = (*MakeCodec(spec))->Compress(outlier.view());
    ASSERT_TRUE(c.ok()) << spec << ": " << c.status();
    auto back = Decompress(c->frame);
    ASSERT_TRUE(back.ok()) << back.status();
    const ErrorBounds bounds = *ParseErrorBounds((*ParseSpec(spec))[0]);
    const ErrorStats e = MeasureError(outlier.view(), back->view());
    EXPECT_TRUE(bounds.Pass(e)) << spec << ": " << bounds.Violations(e);
  }

  Tensor nan = Gaussian(DType::kFP32, {1, 1000, 128}, 11);
  const float not_a_number = NAN;
  std::memcpy(&nan.bytes[4 * kOutside], &not_a_number, 4);
  auto refused = (*MakeCodec("bounded(cos=0.99,fallback=none)"))->Compress(nan.view());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition) << refused.status();
  EXPECT_NE(refused.status().message().find("non-finite"), absl::string_view::npos)
      << refused.status();
  auto exact = (*MakeCodec("bounded(cos=0.99)"))->Compress(nan.view());
  ASSERT_TRUE(exact.ok()) << exact.status();
  EXPECT_TRUE(exact->report.lossless);
  auto back = Decompress(exact->frame);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(back->bytes == nan.bytes);
}

// bounded(...) re-runs on the whole tensor only after uquant's own refusal (a non-finite value,
// or a code out of range), which may come from values outside its sample; every other error is
// the answer. The refusals are marked; the code and message stay as they were.
TEST(BoundedTest, OnlyUquantsOwnRefusalsAreMarkedForARerun) {
  Tensor t = Gaussian(DType::kFP32, {1, 64, 8}, 5);
  auto too_fine = (*MakeCodec("uquant(1e-9)+zstd(1)"))->Compress(t.view());
  ASSERT_FALSE(too_fine.ok());
  EXPECT_EQ(too_fine.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(uquant_internal::IsRefusal(too_fine.status())) << too_fine.status();

  const float inf = INFINITY;
  std::memcpy(&t.bytes[40], &inf, 4);
  auto not_finite = (*MakeCodec("uquant(0.01)+zstd(1)"))->Compress(t.view());
  ASSERT_FALSE(not_finite.ok());
  EXPECT_TRUE(uquant_internal::IsRefusal(not_finite.status())) << not_finite.status();

  EXPECT_FALSE(uquant_internal::IsRefusal(absl::InvalidArgumentError("any other error")));
}

TEST(BoundedTest, BadSpecsNameTheProblem) {
  for (const char* bad : {"bounded", "bounded(cos=2)", "bounded(cos=x)", "bounded(foo=1)",
                          "bounded(cos=0.9,coder=quant(8))", "bounded(cos=0.9,coder=nosuch)"}) {
    auto c = MakeCodec(bad);
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << bad << " " << c.status();
  }
}

TEST(PolicyTest, MixedKvAndLayersRouteByPlace) {
  Tensor t = Gaussian(DType::kFP16, {2, 50, 8}, 8);
  auto route = [&](const std::string& spec, int layer, Kind kind) {
    t.meta.layer = layer;
    t.meta.kind = kind;
    auto c = (*MakeCodec(spec))->Compress(t.view());
    EXPECT_TRUE(c.ok()) << c.status();
    return c->report.spec;
  };
  const std::string mixed = "mixed(2,zstd(1),uquant(0.01)+zstd(3))";
  EXPECT_EQ(route(mixed, 0, Kind::kKey), "zstd(1)");
  EXPECT_EQ(route(mixed, 1, Kind::kValue), "zstd(1)");
  EXPECT_EQ(route(mixed, 2, Kind::kKey), "uquant(0.01)+zstd(3)");
  const std::string kv = "kv(k=zstd(1),v=zstd(5))";
  EXPECT_EQ(route(kv, 4, Kind::kKey), "zstd(1)");
  EXPECT_EQ(route(kv, 4, Kind::kValue), "zstd(5)");
  const std::string layers = "layers(0-1=zstd(1),3=zstd(2),default=zstd(9))";
  EXPECT_EQ(route(layers, 1, Kind::kKey), "zstd(1)");
  EXPECT_EQ(route(layers, 3, Kind::kKey), "zstd(2)");
  EXPECT_EQ(route(layers, 2, Kind::kKey), "zstd(9)");
  EXPECT_EQ(route("mixed(1,zstd(1),kv(k=zstd(2),v=zstd(3)))", 5, Kind::kValue), "zstd(3)");
}

TEST(PolicyTest, BadPoliciesNameTheProblem) {
  for (const char* bad :
       {"mixed(2,zstd(1))", "mixed(x,zstd(1),zstd(2))", "kv(q=zstd(1))", "layers(a-b=zstd(1))",
        "layers(3-1=zstd(1))", "mixed(1,nosuch,zstd(1))", "zstd(1)+mixed(1,zstd(1),zstd(2))"}) {
    auto c = MakeCodec(bad);
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << bad << " " << c.status();
  }
  auto c = (*MakeCodec("kv(k=zstd(1))"))->Compress(Gaussian(DType::kFP16, {1, 2, 2}, 1).view());
  EXPECT_FALSE(c.ok());  // a V-less... kind unspecified: no rule
}

}  // namespace
}  // namespace kvcomp

// uquant(step): uniform quantisation with one absolute step for the whole tensor. Each value
// becomes round(x / step), zigzag-coded in 16 bits; the decoder returns code x step rounded to
// the tensor's dtype. One global step is what minimises total squared error for a given
// entropy (equal distortion in every channel), so with a context-modelling entropy coder
// behind it this is the error-bounded workhorse that `bounded(...)` tunes.
// Layout: docs/FORMAT.md#uquant-id-32.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/kvcomp/internal/status_macros.h"
#include "core/kvcomp/internal/vector_clones.h"
#include "core/kvcomp/registry.h"
#include "core/kvcomp/stage_ids.h"
#include "core/kvcomp/stages/float_io.h"
#include "core/kvcomp/stages/stage_util.h"
#include "core/kvcomp/stages/uquant_16bit.h"
#include "core/kvcomp/stages/uquant_refusal.h"

namespace kvcomp {
namespace {

constexpr int32_t kMaxCode = 32767;

// The codes round(x / step) of m values (inv = 1 / step, s the decoder's step), in q and
// zigzag-coded into dst; non-zero when one is out of range. A code whose value q s would round
// to infinity in the stream's type (|q s| >= `overflow`: x near the type's largest value, a
// coarse step) moves one step toward zero, so that a finite tensor decodes finite (found by
// fuzz_roundtrip). Branch-free and vectorisable: the loops hold no float reduction (which GCC
// keeps scalar without -ffast-math), codes out of range are found with an integer OR, and the
// clamp (only there to keep the conversion defined) sits apart from the zigzag, or GCC turns
// the clamped cases into branches.
KV_VECTOR_CLONES uint32_t QuantizeChunk(const float* x, size_t m, float inv, float s,
                                        float overflow, int32_t* q, uint8_t* dst) {
  for (size_t i = 0; i < m; ++i) {
    q[i] = static_cast<int32_t>(RoundEven(std::min(std::max(x[i] * inv, -4e6f), 4e6f)));
  }
  if (std::isfinite(overflow)) {  // only when a code in range can reach it (a step of 2+ in FP16)
    for (size_t i = 0; i < m; ++i) {
      const int32_t toward_zero = (q[i] > 0) - (q[i] < 0);
      q[i] -= std::fabs(static_cast<float>(q[i]) * s) >= overflow ? toward_zero : 0;
    }
  }
  uint32_t out_of_range = 0;
  for (size_t i = 0; i < m; ++i) {
    out_of_range |= static_cast<uint32_t>(q[i] + kMaxCode) > 2 * kMaxCode;
    stage_util::Store16(dst + 2 * i, ZigZag16(q[i]));
  }
  return out_of_range;
}

// The decoder's values for codes in range, before their rounding to the stream's type: the
// same operation as DecodeChunk's, on codes not yet zigzagged.
KV_VECTOR_CLONES void Dequantize(const int32_t* q, size_t m, float s, float* y) {
  for (size_t i = 0; i < m; ++i) y[i] = static_cast<float>(q[i]) * s;
}

// m values from their zigzag codes at src (which may be unaligned: a view into the frame).
KV_VECTOR_CLONES void DecodeChunk(const uint8_t* src, size_t m, float s, float* x) {
  for (size_t i = 0; i < m; ++i) {
    uint16_t z;
    std::memcpy(&z, src + 2 * i, 2);
    x[i] = static_cast<float>(UnZigZag16(z)) * s;
  }
}

// The codes of a float stream at z and, with `error`, their decoded error, an L1 chunk at a
// time: widen, quantise, decode as the decoder will, sum. *worst gets the largest |code| of a
// chunk with codes out of range.
absl::Status GeneralEncode(const Stream& src, float inv, float s, float overflow, uint8_t* z,
                           ErrorSums* error, int64_t* worst) {
  return ForEachFiniteChunk("uquant", src, [&](size_t first, size_t m, const float* x) {
    int32_t q[kFloatChunk];
    const uint32_t out_of_range = QuantizeChunk(x, m, inv, s, overflow, q, z + 2 * first);
    for (size_t i = 0; out_of_range && i < m; ++i) {
      *worst = std::max<int64_t>(*worst, std::abs(q[i]));
    }
    if (error == nullptr) return;
    // What the decoder will return for these codes (see DoDecode), against x, summed
    // over MeasureError's own chunks: the report is what a reader measures.
    static_assert(kFloatChunk == kErrorChunk);
    float y[kFloatChunk + 8];  // AddErrorSums pads to its 8 lanes
    Dequantize(q, m, s, y);
    RoundThrough(FloatDType(src.desc().type), y, m);
    if (m % 8 == 0) {  // every chunk but maybe the last: no padding, so x is only read
      AddErrorSumsChunk(const_cast<float*>(x), y, m, error);
    } else {
      float xs[kFloatChunk + 8];
      std::copy(x, x + m, xs);
      AddErrorSumsChunk(xs, y, m, error);
    }
  });
}

class UniformQuantStage final : public Stage {
 public:
  using Stage::Stage;
  double step() const { return values()[0]; }

  absl::StatusOr<std::vector<StreamDesc>> Plan(absl::Span<const StreamDesc> in) const override {
    const absl::StatusOr<size_t> f = FindFloatStream("uquant", in);
    if (!f.ok()) return f.status();
    return AppendOthers({{ElemType::kU16, in[*f].geom}}, in);
  }

  absl::Status DoEncode(const Streams& in, Streams* out) const override {
    return EncodeAndMeasure(in, out, nullptr);
  }

  // The decoder is code x step rounded to the stream's type, nothing else: the encoder computes
  // exactly that for each code it emits and sums the error as it goes.
  bool MeasuresWhileEncoding() const override { return true; }
  absl::Status DoEncodeMeasuring(const Streams& in, Streams* out, ErrorSums* error) const override {
    return EncodeAndMeasure(in, out, error);
  }

 private:
  absl::Status EncodeAndMeasure(const Streams& in, Streams* out, ErrorSums* error) const {
    const Stream& src = in[FloatStreamIndex(in)];
    const size_t n = src.data().size() / ElemSize(src.desc().type);
    Stream codes = Stream::Allocate({ElemType::kU16, src.desc().geom}, 2 * n);
    uint8_t* const z = codes.mutable_data();
    const float inv = static_cast<float>(1.0 / step());
    const float s = static_cast<float>(step());  // the decoder's
    // FP32: only q s = inf is infinite, so no code needs the check.
    uquant_internal::Format16 format;
    const bool narrow = uquant_internal::Format16Of(FloatDType(src.desc().type), &format);
    const float overflow = narrow ? uquant_internal::OverflowAt(format, step()) : INFINITY;
    int64_t worst = 0;  // largest |code| of a chunk with codes out of range
    // FP16 and BF16 on AVX2 + F16C: all of it in one pass; anything it declines (a non-finite
    // value, sums that need double) goes the general way below, which reports it.
    ErrorSums fused = error ? *error : ErrorSums{};
    int64_t max_code = 0;
    if (narrow && uquant_internal::Quantize16(format, src.data().data(), n, inv, s, overflow, z,
                                              error ? &fused : nullptr, &max_code)) {
      if (error) *error = fused;
      if (max_code > kMaxCode) worst = max_code;
    } else {
      KV_RETURN_IF_ERROR(
          uquant_internal::MarkRefusal(GeneralEncode(src, inv, s, overflow, z, error, &worst)));
    }
    if (worst > kMaxCode) {
      return uquant_internal::MarkRefusal(absl::InvalidArgumentError(
          absl::StrCat("uquant: step ", step(), " is too fine for this tensor: codes reach ", worst,
                       ", the limit is ", kMaxCode)));
    }
    if (error) error->count = n;
    out->push_back(std::move(codes));
    PassOthers(in, out);
    return absl::OkStatus();
  }

 public:
  absl::Status DoDecode(const Streams& encoded, absl::Span<const StreamDesc> want,
                        absl::Span<uint8_t> into, Streams* decoded) const override {
    const uint8_t* src = encoded[0].data().data();  // may be unaligned: a view into the frame
    const size_t f = FloatStreamIndex(want);
    uint8_t* out;
    decoded->push_back(Stream::Output(want[f], f == 0 ? into : absl::Span<uint8_t>(), &out));
    DecodeElements(want[f], src, want[f].geom.size(), out);
    return RestoreOthers("uquant", encoded, 1, want, decoded);
  }

  // Code x step, element by element: decodable from a piece of the codes as qhuff makes it.
  bool DecodesElementwise() const override { return true; }
  void DecodeElements(const StreamDesc& want, const uint8_t* in, size_t count,
                      uint8_t* out) const override {
    const float s = static_cast<float>(step());
    uquant_internal::Format16 format;
    if (uquant_internal::Format16Of(FloatDType(want.type), &format) &&
        uquant_internal::Dequantize16(format, in, count, s, out)) {
      return;
    }
    NarrowChunked(want.type, count, out, [in, s](size_t first, size_t m, float* x) {
      DecodeChunk(in + 2 * first, m, s, x);
    });
  }
};

}  // namespace

void RegisterUniformQuantStage(StageRegistry& r) {
  r.Register(StageInfo{
      .id = stage_id::kUquant,
      .name = "uquant",
      .summary = "uniform quantisation to multiples of one absolute step (lossy)",
      .lossless = false,
      .params = {{.name = "step",
                  .type = ParamType::kFloat,
                  .default_value = 0.01,
                  .min = 1e-30,
                  .max = 1e30,
                  .help = "quantisation step; max error is step/2 (a step where step/2 would pass "
                          "the type's largest value)"}},
      .make = MakeStage<UniformQuantStage>,
  });
}

}  // namespace kvcomp

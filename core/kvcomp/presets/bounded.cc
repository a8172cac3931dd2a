// bounded(cos=0.9999, rel_mae=0.01, ..., coder=SPEC, fallback=SPEC): for each tensor, the
// coarsest uniform step whose decoded error meets every bound, entropy-coded by `coder`
// (default: qhuff, after dedupe when a sample of the rows finds repeats).
//
// The step is found by bisection on a sample, simulating the decoder's exact float operations.
// The whole tensor is then quantised at that step, and uquant measures, as it emits each code,
// the error the decoder will leave (the decoder's own arithmetic on that code; see
// Stage::EncodeMeasuring). Only a step whose error meets every bound, tightened by a margin
// for the float sums, is entropy-coded and returned; a step that misses is scaled down by how
// far it missed and tried again. A tensor the lossy path cannot serve (non-finite values,
// bounds tighter than 16-bit codes allow) goes to the lossless `fallback`, which meets any
// bound; with fallback=none the preset refuses instead (FAILED_PRECONDITION).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "core/kvcomp/error_bounds.h"
#include "core/kvcomp/internal/quote.h"
#include "core/kvcomp/internal/status_macros.h"
#include "core/kvcomp/internal/vector_clones.h"
#include "core/kvcomp/preset.h"
#include "core/kvcomp/presets/duplicate_rows.h"
#include "core/kvcomp/registry.h"
#include "core/kvcomp/stage_ids.h"
#include "core/kvcomp/stages/float_io.h"
#include "core/kvcomp/stages/uquant_16bit.h"
#include "core/kvcomp/stages/uquant_refusal.h"

namespace kvcomp {
namespace {

constexpr double kMaxCode = 32767;
// The step search (SearchStep) stops within 0.3% of the coarsest step that passes on the sample,
// which moves the ratio by under 0.05%; it takes at most kSearchSteps simulations.
constexpr double kStepTolerance = 0.001;
constexpr int kSearchSteps = 16;
// The whole tensor's error is summed in float lanes (to a few parts per million); its bounds
// are met with this relative margin to spare, which costs well under 0.01% of the ratio.
constexpr double kMargin = 1e-4;
// Whole-tensor attempts. The sample misjudges a tensor by about a percent (on Llama-shaped
// caches, rel_mae 0.4-1.3% over at the sample's step for half the tensors): the first attempt
// starts 1.5% finer (1 retry in 8 Llama-shaped tensors at cos 0.9999 and 0.999, where 0.5%
// finer retried 4 in 8, for 0.15% of the ratio), and a miss is scaled down by its overshoot,
// so a third attempt is rarer still.
constexpr int kAttempts = 4;
constexpr double kFirstAttempt = 0.985;
// The step search runs on at most this many elements, in evenly spaced contiguous blocks;
// the chosen step is then verified on the whole tensor.
constexpr uint64_t kSearchSample = 1 << 16;
constexpr uint64_t kSampleBlock = 1 << 10;
// qhuff models quantised KV codes (per-channel prediction, one code over quotients); dedupe in
// front when rows repeat (V of layer 0). On ../shared/kv FP16 at cos=0.9999,rel_mae=0.01 this
// gave KV 2.64x where planes+zstd(1), the coder before it, gave 2.39x (docs/CODEC_NOTES.md).
constexpr const char* kDefaultCoder = "qhuff";
constexpr const char* kDedupeCoder = "dedupe+qhuff";
constexpr const char* kDefaultFallback = "zstd(19)";

// The search's sample: the tensor itself when it holds at most kSearchSample values, else that
// many of its values in evenly spaced contiguous blocks, copied to *storage. Either way in the
// tensor's dtype, so that the simulation reads what uquant will read.
TensorView SearchSample(const TensorView& t, Tensor* storage) {
  const uint64_t n = t.meta().NumElements();
  if (n <= kSearchSample) return t;
  const size_t es = DTypeSize(t.meta().dtype);
  storage->meta.dtype = t.meta().dtype;
  storage->meta.shape = {static_cast<int64_t>(kSearchSample)};
  storage->bytes.resize(kSearchSample * es);
  const uint64_t blocks = kSearchSample / kSampleBlock;
  for (uint64_t b = 0; b < blocks; ++b) {
    const uint64_t start = b * (n - kSampleBlock) / (blocks - 1);
    std::memcpy(storage->bytes.data() + b * kSampleBlock * es, t.bytes().data() + start * es,
                kSampleBlock * es);
  }
  return storage->view();
}

// The largest magnitude among n values of W-bit IEEE words at p (any alignment), or NaN when
// one is not finite. Without their sign bit, finite IEEE values order as their bits do, and the
// all-ones exponent marks every NaN and infinity: one integer pass, no conversion.
template <typename W>
[[gnu::always_inline]] inline W MaxMagnitudeBits(const uint8_t* p, size_t n, W exponent,
                                                 bool* finite) {
  constexpr size_t kLanes = 32 / sizeof(W);
  const W magnitude = static_cast<W>(static_cast<W>(~W{0}) >> 1);
  W peak[kLanes] = {};
  W bad = 0;  // an OR, which vectorises where an early exit would not
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (size_t k = 0; k < kLanes; ++k) {
      W v;
      std::memcpy(&v, p + (i + k) * sizeof(W), sizeof(W));
      const W m = v & magnitude;
      peak[k] = m > peak[k] ? m : peak[k];
      bad |= static_cast<W>((v & exponent) == exponent);
    }
  }
  for (; i < n; ++i) {
    W v;
    std::memcpy(&v, p + i * sizeof(W), sizeof(W));
    peak[0] = std::max<W>(peak[0], v & magnitude);
    bad |= static_cast<W>((v & exponent) == exponent);
  }
  *finite = bad == 0;
  return *std::max_element(peak, peak + kLanes);
}

KV_VECTOR_CLONES uint16_t MaxMagnitude16(const uint8_t* p, size_t n, uint16_t exponent,
                                         bool* finite) {
  return MaxMagnitudeBits<uint16_t>(p, n, exponent, finite);
}
KV_VECTOR_CLONES uint32_t MaxMagnitude32(const uint8_t* p, size_t n, bool* finite) {
  return MaxMagnitudeBits<uint32_t>(p, n, 0x7f800000u, finite);
}

// max |x| over the tensor, or NaN when it holds a non-finite value.
double MaxAbsOrNan(const TensorView& t) {
  const uint8_t* p = t.bytes().data();
  const size_t n = t.meta().NumElements();
  bool finite = true;
  double peak = 0;
  switch (t.meta().dtype) {
    case DType::kFP16:
      peak = HalfBitsToFloat(MaxMagnitude16(p, n, 0x7c00, &finite));
      break;
    case DType::kBF16:
      peak = Bf16BitsToFloat(MaxMagnitude16(p, n, 0x7f80, &finite));
      break;
    case DType::kFP32: {
      const uint32_t bits = MaxMagnitude32(p, n, &finite);
      float f;
      std::memcpy(&f, &bits, 4);
      peak = f;
      break;
    }
    case DType::kQ8_0:
    case DType::kQ4_0:
      return NAN;  // not floats; Compress refuses them first
  }
  return finite ? peak : NAN;
}

// SimulateError's general path: widen, quantise, round and sum, an L1 chunk at a time.
KV_VECTOR_CLONES ErrorStats SimulateChunks(const TensorView& values, double step) {
  const float inv = static_cast<float>(1.0 / step);
  const float s = static_cast<float>(step);
  constexpr size_t kChunk = 1024;
  float x[kChunk], y[kChunk];
  const DType dtype = values.meta().dtype;
  const uint64_t n = values.meta().NumElements();
  const size_t es = DTypeSize(dtype);
  ErrorSums sums;
  sums.count = n;
  for (uint64_t base = 0; base < n; base += kChunk) {
    const size_t m = static_cast<size_t>(std::min<uint64_t>(kChunk, n - base));
    ToFloat(dtype, values.bytes().data() + base * es, x, m);
    for (size_t i = 0; i < m; ++i) y[i] = RoundEven(x[i] * inv) * s;
    RoundThrough(dtype, y, m);
    AddErrorSumsChunk(x, y, m, &sums);
  }
  return StatsFromSums(sums);
}

// The error uquant(step) would leave on `values`, as the decoder computes it (the same float
// operations, then the rounding to the values' dtype), without encoding anything, on the
// search's sample; the chosen step's error is then measured on the whole tensor as uquant emits
// its codes. FP16 and BF16 take uquant's own one-pass kernel (Simulate16) on the values
// themselves: on a 32 KiB Llama-shaped FP16 block, where the search is about a third of the
// compression, that compressed 3% faster on Zen 5. `values` must be finite.
ErrorStats SimulateError(const TensorView& values, double step) {
  ErrorSums sums;
  uquant_internal::Format16 format;
  if (uquant_internal::Format16Of(values.meta().dtype, &format) &&
      uquant_internal::Simulate16(format, values.bytes().data(), values.meta().NumElements(), step,
                                  &sums)) {
    return StatsFromSums(sums);
  }
  return SimulateChunks(values, step);
}

// Sums of |x| and x^2 in double lanes, which vectorise where one running sum of each would wait
// on its own additions (on a 32 KiB block that loop was 8% of the compression).
KV_VECTOR_CLONES void MagnitudeSums(const float* x, uint64_t n, double* abs_sum, double* sq_sum) {
  constexpr size_t kLanes = 8;
  double a[kLanes] = {}, q[kLanes] = {};
  uint64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (size_t k = 0; k < kLanes; ++k) {
      const double v = x[i + k];
      a[k] += std::fabs(v);
      q[k] += v * v;
    }
  }
  for (; i < n; ++i) a[0] += std::fabs(double{x[i]}), q[0] += double{x[i]} * x[i];
  for (size_t k = 0; k < kLanes; ++k) *abs_sum += a[k], *sq_sum += q[k];
}

class BoundedCodec final : public Codec {
 public:
  // `coder` empty: the default, qhuff or dedupe+qhuff per tensor.
  BoundedCodec(std::string spec, ErrorBounds bounds, SpecPipeline coder,
               std::unique_ptr<Codec> fallback)
      : spec_(std::move(spec)),
        bounds_(std::move(bounds)),
        coder_(std::move(coder)),
        fallback_(std::move(fallback)) {}

  std::string Spec() const override { return spec_; }

  absl::StatusOr<CompressedTensor> Compress(const TensorView& tensor) const override {
    if (IsBlockQuantized(tensor.meta().dtype)) {
      return absl::InvalidArgumentError(absl::StrCat(
          spec_, ": ", DTypeName(tensor.meta().dtype),
          " tensors are compressed losslessly only (the cache is already quantised; use "
          "lossless, lossless-max or qsplit+huff)"));
    }
    Tensor storage;
    const TensorView sample = SearchSample(tensor, &storage);
    // First on the sample's largest value, which saves a pass over the tensor: uquant itself
    // refuses a tensor with a non-finite value or a code out of range beyond the sample, and
    // only then is the tensor's own largest value found and the lossy path run on it. Any
    // other error is the answer (a re-run would hide it behind the second one's).
    double max_abs = MaxAbsOrNan(sample);
    absl::StatusOr<std::optional<CompressedTensor>> out = CompressLossy(tensor, sample, max_abs);
    if (!out.ok() && uquant_internal::IsRefusal(out.status()) &&
        sample.meta().NumElements() < tensor.meta().NumElements()) {
      const double tensor_max_abs = MaxAbsOrNan(tensor);
      if (std::isnan(tensor_max_abs) || tensor_max_abs > max_abs) {
        max_abs = tensor_max_abs;
        out = CompressLossy(tensor, sample, max_abs);
      }
    }
    if (!out.ok()) return out.status();
    if (*out) return **std::move(out);
    if (!fallback_) {
      return absl::FailedPreconditionError(absl::StrCat(
          "bounded: no quantisation step meets ", bounds_.ToString(), " for layer ",
          tensor.meta().layer, " ", KindName(tensor.meta().kind),
          std::isnan(max_abs) ? " (it holds non-finite values)" : "", ", and fallback=none"));
    }
    return fallback_->Compress(tensor);
  }

 private:
  // The lossy frame, or nullopt when no step meets the bounds, for the largest magnitude
  // max_abs (NaN: a value is not finite).
  absl::StatusOr<std::optional<CompressedTensor>> CompressLossy(const TensorView& tensor,
                                                                const TensorView& sample,
                                                                double max_abs) const {
    // The search stays inside uquant's step range, which the stage enforces; a tensor whose
    // codes overflow even at the largest step goes to the fallback (found by fuzz_roundtrip,
    // tests/fuzz/regressions/roundtrip/bounded-step-*).
    const ParamDef& step_range = StageRegistry::Get().FindById(stage_id::kUquant)->params[0];
    if (std::isnan(max_abs) || tensor.meta().NumElements() == 0 ||
        max_abs / kMaxCode > step_range.max) {
      return std::nullopt;
    }
    // Steps finer than this overflow 16-bit codes; coarser than 2 max|x| zero everything.
    const double finest = std::max(max_abs / kMaxCode, step_range.min);
    const double hi = std::clamp(2 * max_abs, step_range.min, step_range.max);
    const std::optional<double> found = SearchStep(sample, finest, hi);
    if (!found) return std::nullopt;
    const double lo = *found;
    const SpecPipeline& coder = coder_.empty() ? DefaultCoder(tensor) : coder_;
    // A tensor no larger than the sample was the sample: its step needs no room to spare.
    const bool sampled = tensor.meta().NumElements() > sample.meta().NumElements();
    double step = sampled ? std::max(lo * kFirstAttempt, finest) : lo;
    for (int attempt = 0; attempt < kAttempts; ++attempt) {
      KV_ASSIGN_OR_RETURN(Pipeline pipeline, LossyPipeline(step, coder));
      ErrorStats seen;
      KV_ASSIGN_OR_RETURN(std::optional<CompressedTensor> out,
                          CompressIf(pipeline, tensor, [&](const ErrorStats& e) {
                            seen = e;
                            return bounds_.Pass(e, kMargin);
                          }));
      if (out) return out;
      if (step <= finest) break;
      step = std::max(step * std::min(0.99, 0.998 / bounds_.Overshoot(seen)), finest);
    }
    return std::nullopt;
  }

  // The coarsest step in [finest, top] whose simulated error on `sample` meets the bounds, to
  // within kStepTolerance, or nullopt when even `finest` misses them (checked only when the
  // first guess misses: one simulation fewer for most tensors). Newton steps on the error's growth
  // with the step (ErrorBounds::Overshoot), each kept inside the bracket of a passing and a failing
  // step, or a bisection when one would leave it: 3-5 simulations where bisection took 14, which on
  // a tensor no larger than the sample (a 32 KiB KV block) were most of its compression.
  std::optional<double> SearchStep(const TensorView& sample, double finest, double top) const {
    const auto passes_at = [&](double step) { return bounds_.Pass(SimulateError(sample, step)); };
    // The largest error jumps with the inputs' grid (a max_abs=0.001 bound on FP16 passes at
    // steps well above the 2 x 0.001 the model gives): bisection over the whole range finds
    // those, where Newton stops at the first crossing (3% of the ratio on ../shared/kv FP16).
    if (bounds_.max_abs) {
      if (!passes_at(finest)) return std::nullopt;
      return Bisect(sample, finest, top);
    }
    double pass = finest, fail = top;
    double s = std::clamp(GuessStep(sample), finest, top);
    ErrorStats e = SimulateError(sample, s);
    if (bounds_.Pass(e)) {
      pass = s;
    } else if (s <= finest || !passes_at(finest)) {
      return std::nullopt;
    } else {
      fail = s;
    }
    for (int i = 0; i < kSearchSteps && fail / pass > 1 + kStepTolerance; ++i) {
      // Aim a hair inside the bound, so that the next step usually lands on the passing side.
      double next = s / bounds_.Overshoot(e) * (1 - kStepTolerance / 2);
      if (!(next > pass && next < fail)) next = std::sqrt(pass * fail);
      s = next;
      e = SimulateError(sample, s);
      if (bounds_.Pass(e)) {
        pass = s;
        if (bounds_.Overshoot(e) > 1 - kStepTolerance) break;  // as close as it needs to be
      } else {
        fail = s;
      }
    }
    return pass;
  }

  double Bisect(const TensorView& sample, double pass, double fail) const {
    if (bounds_.Pass(SimulateError(sample, fail))) return fail;
    while (fail / pass > 1 + kStepTolerance) {
      const double mid = std::sqrt(pass * fail);
      (bounds_.Pass(SimulateError(sample, mid)) ? pass : fail) = mid;
    }
    return pass;
  }

  // A first step from the textbook model of uniform quantisation, error uniform in half a step
  // either way: MAE s/4, RMS error s/sqrt(12), max s/2, and 1 - cos about MSE / (2 mean x^2).
  // The coarsest step that model allows under every bound; the search corrects it.
  double GuessStep(const TensorView& sample) const {
    const uint64_t n = sample.meta().NumElements();
    double abs_sum = 0, sq_sum = 0;
    const DType dtype = sample.meta().dtype;
    const size_t es = DTypeSize(dtype);
    float x[1024];
    for (uint64_t base = 0; base < n; base += std::size(x)) {
      const size_t m = static_cast<size_t>(std::min<uint64_t>(std::size(x), n - base));
      ToFloat(dtype, sample.bytes().data() + base * es, x, m);
      MagnitudeSums(x, m, &abs_sum, &sq_sum);
    }
    const double mean_abs = n ? abs_sum / n : 0, mean_sq = n ? sq_sum / n : 0;
    double s = INFINITY;
    const ErrorBounds& b = bounds_;
    if (b.mae) s = std::min(s, 4 * *b.mae);
    if (b.rel_mae) s = std::min(s, 4 * *b.rel_mae * mean_abs);
    if (b.max_abs) s = std::min(s, 2 * *b.max_abs);
    if (b.rel_rmse) s = std::min(s, std::sqrt(12 * mean_sq) * *b.rel_rmse);
    if (b.cosine) s = std::min(s, std::sqrt(24 * (1 - *b.cosine) * mean_sq));
    if (b.snr_db) s = std::min(s, std::sqrt(12 * mean_sq * std::pow(10.0, -*b.snr_db / 10)));
    return s;
  }

  static const SpecPipeline& DefaultCoder(const TensorView& tensor) {
    static const SpecPipeline* plain = new SpecPipeline(*ParseSpec(kDefaultCoder));
    static const SpecPipeline* dedupe = new SpecPipeline(*ParseSpec(kDedupeCoder));
    return SampleDuplicateFraction(tensor) >= kDedupeWorthIt ? *dedupe : *plain;
  }

  static absl::StatusOr<Pipeline> LossyPipeline(double step, const SpecPipeline& coder) {
    std::vector<std::unique_ptr<Stage>> stages;
    KV_ASSIGN_OR_RETURN(stages.emplace_back(),
                        StageRegistry::Get().Create(stage_id::kUquant, ParamValues{step}));
    for (const SpecNode& node : coder) {
      KV_ASSIGN_OR_RETURN(stages.emplace_back(), StageRegistry::Get().Create(node));
    }
    return Pipeline::FromStages(std::move(stages));
  }

  std::string spec_;
  ErrorBounds bounds_;
  SpecPipeline coder_;
  std::unique_ptr<Codec> fallback_;
};

absl::StatusOr<std::unique_ptr<Codec>> MakeBounded(const SpecNode& node) {
  std::vector<const SpecArg*> other;
  KV_ASSIGN_OR_RETURN(ErrorBounds bounds, ParseErrorBounds(node, &other));
  if (bounds.empty()) {
    return absl::InvalidArgumentError(
        "bounded needs at least one bound: cos=, mae=, rel_mae=, max_abs=, rel_rmse=, snr_db=");
  }
  SpecPipeline coder;  // empty: the default
  SpecPipeline fallback_spec = *ParseSpec(kDefaultFallback);
  bool fallback_none = false;
  for (const SpecArg* arg : other) {
    if (arg->key == "coder") {
      coder = arg->value;
    } else if (arg->key == "fallback") {
      fallback_none = SpecNode::Scalar(*arg) == "none";
      fallback_spec = arg->value;
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "bounded: unknown argument ", Quote(arg->key.empty() ? FormatSpec(arg->value) : arg->key),
          " (bounds: cos=, mae=, rel_mae=, max_abs=, rel_rmse=, snr_db=; also coder=, "
          "fallback=)"));
    }
  }
  // Check the coder now, on a dummy plan, so a bad coder fails at spec time.
  for (const SpecNode& stage : coder) {
    auto made = StageRegistry::Get().Create(stage);
    if (!made.ok()) return made.status();
    if (!(*made)->lossless()) {
      return absl::InvalidArgumentError(
          absl::StrCat("bounded: coder stage ", Quote(stage.name), " must be lossless"));
    }
  }
  std::unique_ptr<Codec> fallback;
  if (!fallback_none) {
    KV_ASSIGN_OR_RETURN(fallback, MakeCodec(fallback_spec));
  }
  return std::make_unique<BoundedCodec>(FormatSpec(SpecPipeline{node}), std::move(bounds),
                                        std::move(coder), std::move(fallback));
}

}  // namespace

void RegisterBoundedPreset(PresetRegistry& r) {
  r.Register(PresetInfo{
      .name = "bounded",
      .summary = "the smallest lossy frame whose measured error meets every bound",
      .make = MakeBounded,
      .usage = "bounded(cos=C,mae=M,rel_mae=R,max_abs=A,rel_rmse=E,snr_db=S,coder=SPEC,"
               "fallback=SPEC): any bounds, at least one",
      .exactness = PresetExactness::kLossy,
  });
}

}  // namespace kvcomp

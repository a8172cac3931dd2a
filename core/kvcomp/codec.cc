#include "core/kvcomp/codec.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

#include "core/kvcomp/internal/quote.h"
#include "core/kvcomp/internal/status_macros.h"
#include "core/kvcomp/preset.h"

namespace kvcomp {
namespace {

class PipelineCodec final : public Codec {
 public:
  explicit PipelineCodec(Pipeline pipeline) : pipeline_(std::move(pipeline)) {}
  std::string Spec() const override { return pipeline_.Spec(); }
  absl::StatusOr<CompressedTensor> Compress(const TensorView& tensor) const override {
    return CompressWith(pipeline_, tensor);
  }

 private:
  Pipeline pipeline_;
};

}  // namespace

absl::StatusOr<std::optional<CompressedTensor>> CompressIf(
    const Pipeline& pipeline, const TensorView& tensor,
    absl::FunctionRef<bool(const ErrorStats&)> accept) {
  CompressedTensor out;
  TensorReport& r = out.report;
  r.meta = tensor.meta();
  r.raw_bytes = tensor.bytes().size();
  r.spec = pipeline.Spec();
  r.lossless = pipeline.lossless();
  KV_ASSIGN_OR_RETURN(Pipeline::Begun begun, pipeline.EncodeBegin(tensor));
  // The error is that of what a reader will really get back: measured on the decoded frame, or
  // (when the lossy first stage can) computed while encoding with the decoder's own arithmetic.
  // A lossy pipeline can be bit-exact on a given tensor (cast on data already FP16, quant of a
  // constant): the report says what happened to this tensor, so that one is reported lossless.
  std::optional<ErrorStats> error;
  if (!r.lossless && begun.error) {
    error = StatsFromSums(*begun.error);
    if (!accept(*error)) return std::nullopt;
  }
  KV_ASSIGN_OR_RETURN(out.frame, pipeline.EncodeFinish(tensor, std::move(begun)));
  r.compressed_bytes = out.frame.size();
  if (r.lossless) return out;
  // Decoded when the error is not known yet, or when no value moved: a bit may still have
  // (-0 became +0), which only the decoded bytes show.
  if (!error || error->max_abs == 0) {
    KV_ASSIGN_OR_RETURN(Tensor decoded, DecodeFrame(out.frame));
    absl::Span<const uint8_t> in = tensor.bytes();
    if (std::equal(in.begin(), in.end(), decoded.bytes.begin(), decoded.bytes.end())) {
      r.lossless = true;
      return out;
    }
    if (!error) {
      error = MeasureError(tensor, decoded.view());
      if (!accept(*error)) return std::nullopt;
    }
  }
  r.error = error;
  return out;
}

absl::StatusOr<CompressedTensor> CompressWith(const Pipeline& pipeline, const TensorView& tensor) {
  auto out = CompressIf(pipeline, tensor, [](const ErrorStats&) { return true; });
  if (!out.ok()) return out.status();
  return std::move(out->value());
}

std::unique_ptr<Codec> MakePipelineCodec(Pipeline pipeline) {
  return std::make_unique<PipelineCodec>(std::move(pipeline));
}

absl::StatusOr<std::unique_ptr<Codec>> MakeCodec(const SpecPipeline& spec) {
  if (spec.size() == 1) {
    if (const PresetInfo* preset = PresetRegistry::Get().Find(spec[0].name)) {
      return preset->make(spec[0]);
    }
  }
  for (const SpecNode& node : spec) {
    if (PresetRegistry::Get().Find(node.name)) {
      return absl::InvalidArgumentError(absl::StrCat(
          Quote(node.name), " is a preset and cannot be chained with other stages (offset ",
          node.pos, ")"));
    }
  }
  KV_ASSIGN_OR_RETURN(Pipeline pipeline, Pipeline::FromSpec(spec));
  return MakePipelineCodec(std::move(pipeline));
}

absl::StatusOr<std::unique_ptr<Codec>> MakeCodec(absl::string_view spec) {
  KV_ASSIGN_OR_RETURN(SpecPipeline parsed, ParseSpec(spec));
  return MakeCodec(parsed);
}

}  // namespace kvcomp

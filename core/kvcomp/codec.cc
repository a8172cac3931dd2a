#include "kvcomp/codec.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

#include "kvcomp/preset.h"
#include "kvcomp/status_macros.h"

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

absl::StatusOr<CompressedTensor> CompressWith(const Pipeline& pipeline, const TensorView& tensor) {
  CompressedTensor out;
  KV_ASSIGN_OR_RETURN(out.frame, pipeline.Encode(tensor));
  TensorReport& r = out.report;
  r.meta = tensor.meta();
  r.raw_bytes = tensor.bytes().size();
  r.compressed_bytes = out.frame.size();
  r.spec = pipeline.Spec();
  r.lossless = pipeline.lossless();
  if (!r.lossless) {
    // The error is measured on what a reader will really get back. A lossy pipeline can be
    // bit-exact on a given tensor (cast on data already FP16, quant of a constant): the report
    // says what happened to this tensor, so that one is reported lossless.
    KV_ASSIGN_OR_RETURN(Tensor decoded, DecodeFrame(out.frame));
    absl::Span<const uint8_t> in = tensor.bytes();
    if (std::equal(in.begin(), in.end(), decoded.bytes.begin(), decoded.bytes.end())) {
      r.lossless = true;
    } else {
      r.error = MeasureError(tensor, decoded.view());
    }
  }
  return out;
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
          "'", node.name, "' is a preset and cannot be chained with other stages (offset ",
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

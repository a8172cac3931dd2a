// protected(sink=4, recent=64, INNER): any spec with the first `sink` and last `recent` tokens
// of each tensor kept exactly. INNER (a pipeline, preset or policy) chooses its pipeline on
// the middle tokens alone, e.g. bounded(...) tunes its step without the attention sinks'
// outliers; the frame runs protect(sink,recent) followed by that pipeline on the whole
// tensor, and the report measures the error of the whole decoded tensor.
//
// Named `protected` because preset names may not shadow stage names: the stage is `protect`.
#include "absl/strings/str_cat.h"
#include "core/kvcomp/internal/quote.h"
#include "core/kvcomp/internal/status_macros.h"
#include "core/kvcomp/preset.h"
#include "core/kvcomp/registry.h"

namespace kvcomp {
namespace {

class ProtectedCodec final : public Codec {
 public:
  ProtectedCodec(std::string spec, std::unique_ptr<Stage> protect, std::unique_ptr<Codec> inner)
      : spec_(std::move(spec)), protect_(std::move(protect)), inner_(std::move(inner)) {}

  std::string Spec() const override { return spec_; }

  absl::StatusOr<CompressedTensor> Compress(const TensorView& tensor) const override {
    // The middle tokens, as a tensor of their own for INNER to choose on.
    const StreamDesc desc{ElemTypeOf(tensor.meta().dtype), tensor.geometry()};
    KV_ASSIGN_OR_RETURN(std::vector<StreamDesc> plan, PlanStage(*protect_, {&desc, 1}));
    Streams in, out;
    in.push_back(Stream::Borrow(desc, tensor.bytes()));
    KV_RETURN_IF_ERROR(protect_->Encode(in, &out));
    TensorMeta middle_meta = tensor.meta();
    if (!middle_meta.shape.empty()) {
      middle_meta.shape[TokenAxis(middle_meta)] = static_cast<int64_t>(plan[1].geom.rows);
    }
    KV_ASSIGN_OR_RETURN(TensorView middle, TensorView::Make(middle_meta, out[1].data()));
    KV_ASSIGN_OR_RETURN(CompressedTensor chosen, inner_->Compress(middle));
    // The same pipeline behind protect, on the whole tensor.
    const std::string spec = absl::StrCat(protect_->Spec(), "+", chosen.report.spec);
    auto pipeline = Pipeline::FromSpec(spec);
    if (!pipeline.ok()) {
      return absl::Status(pipeline.status().code(),
                          absl::StrCat(spec_, ": ", pipeline.status().message()));
    }
    KV_ASSIGN_OR_RETURN(CompressedTensor whole, CompressWith(*pipeline, tensor));
    // Exact rows can only lower MAE, relative MAE and RMSE, max abs error and raise SNR, so a
    // bound INNER met on the middle holds on the whole tensor. Cosine almost always rises too,
    // but not by law (when the decoded middle's norm drifts): check it rather than assume.
    if (chosen.report.error && whole.report.error &&
        whole.report.error->cosine < chosen.report.error->cosine) {
      return absl::FailedPreconditionError(absl::StrCat(
          spec_, ": the whole tensor's cosine ", whole.report.error->cosine,
          " is below the middle tokens' ", chosen.report.error->cosine,
          ", so a cosine bound met on the middle may not hold; use INNER without protected"));
    }
    return whole;
  }

 private:
  std::string spec_;
  std::unique_ptr<Stage> protect_;
  std::unique_ptr<Codec> inner_;
};

absl::StatusOr<std::unique_ptr<Codec>> MakeProtected(const SpecNode& node) {
  SpecNode stage_node;
  stage_node.name = "protect";
  stage_node.has_parens = true;
  const SpecArg* inner = nullptr;
  for (const SpecArg& arg : node.args) {
    if (arg.key == "sink" || arg.key == "recent") {
      stage_node.args.push_back(arg);
    } else if (arg.key.empty() && inner == nullptr) {
      inner = &arg;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("protected takes (sink=N, recent=N, SPEC), e.g. "
                       "protected(sink=4,recent=64,bounded(cos=0.9999)); got ",
                       Quote(arg.key.empty() ? FormatSpec(arg.value) : arg.key)));
    }
  }
  if (inner == nullptr) {
    return absl::InvalidArgumentError(
        "protected needs the spec to run on the middle tokens, e.g. "
        "protected(sink=4,recent=64,bounded(cos=0.9999))");
  }
  auto protect = StageRegistry::Get().Create(stage_node);
  if (!protect.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("protected: ", protect.status().message()));
  }
  auto codec = MakeCodec(inner->value);
  if (!codec.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "protected: argument ", Quote(FormatSpec(inner->value)), ": ", codec.status().message()));
  }
  return std::make_unique<ProtectedCodec>(FormatSpec(SpecPipeline{node}), std::move(*protect),
                                          std::move(*codec));
}

}  // namespace

void RegisterProtectedPreset(PresetRegistry& r) {
  r.Register(PresetInfo{
      .name = "protected",
      .summary = "the first `sink` and last `recent` tokens exact, a spec for the rest",
      .make = MakeProtected,
      .usage = "protected(sink=4,recent=64,SPEC)",
      .exactness = PresetExactness::kAsArguments,
  });
}

}  // namespace kvcomp

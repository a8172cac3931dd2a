// lossless and lossless-max: bit-exact presets that pick a pipeline per tensor.
//
//  lossless      the fast default. A cheap sample (the first rows of the tensor) decides
//                whether exact duplicate token rows are worth removing; then Huffman per byte
//                plane: "dedupe+huff" or "huff".
//  lossless-max  the best ratio at any speed: the same sample picks "dedupe+cm" or "cm"
//                (adaptive context-mixing arithmetic coding), and the frame is kept only if
//                it beats what `lossless` would write; otherwise that one is kept.
//
// Quantised blocks (Q8_0, Q4_0) are split into scales and quants first (qsplit), and coded
// by what did best on real caches quantised as ggml does (tests/core/qsplit_stage_test.cc):
// qhuff for Q8_0's int8 quants, rans (per-column contexts) for Q4_0's 4-bit ones; cm for
// lossless-max. Duplicate rows are removed as for floats, before the split.
//
// The frame records the concrete pipeline, so decoding needs nothing from the preset.
#include "absl/strings/str_cat.h"
#include "core/kvcomp/internal/quote.h"
#include "core/kvcomp/internal/status_macros.h"
#include "core/kvcomp/preset.h"
#include "core/kvcomp/presets/duplicate_rows.h"

namespace kvcomp {
namespace {

// One coder, with and without duplicate-row removal in front; the sample picks.
class CoderChoice {
 public:
  static absl::StatusOr<CoderChoice> Make(absl::string_view coder) {
    KV_ASSIGN_OR_RETURN(Pipeline plain, Pipeline::FromSpec(coder));
    KV_ASSIGN_OR_RETURN(Pipeline dedupe, Pipeline::FromSpec(absl::StrCat("dedupe+", coder)));
    return CoderChoice(std::move(plain), std::move(dedupe));
  }
  absl::StatusOr<CompressedTensor> Compress(const TensorView& tensor) const {
    const bool dedupe = SampleDuplicateFraction(tensor) >= kDedupeWorthIt;
    return CompressWith(dedupe ? dedupe_ : plain_, tensor);
  }

 private:
  CoderChoice(Pipeline plain, Pipeline dedupe)
      : plain_(std::move(plain)), dedupe_(std::move(dedupe)) {}
  Pipeline plain_, dedupe_;
};

// A coder per kind of tensor: floats, Q8_0 blocks, Q4_0 blocks.
struct CodersByDType {
  static absl::StatusOr<CodersByDType> Make(absl::string_view floats, absl::string_view q8,
                                            absl::string_view q4) {
    KV_ASSIGN_OR_RETURN(CoderChoice f, CoderChoice::Make(floats));
    KV_ASSIGN_OR_RETURN(CoderChoice a, CoderChoice::Make(q8));
    KV_ASSIGN_OR_RETURN(CoderChoice b, CoderChoice::Make(q4));
    return CodersByDType{std::move(f), std::move(a), std::move(b)};
  }
  const CoderChoice& For(DType dtype) const {
    return dtype == DType::kQ8_0 ? q8_0 : dtype == DType::kQ4_0 ? q4_0 : floats;
  }
  CoderChoice floats, q8_0, q4_0;
};

class LosslessCodec final : public Codec {
 public:
  explicit LosslessCodec(CodersByDType coders) : coders_(std::move(coders)) {}
  std::string Spec() const override { return "lossless"; }
  absl::StatusOr<CompressedTensor> Compress(const TensorView& tensor) const override {
    return coders_.For(tensor.meta().dtype).Compress(tensor);
  }

 private:
  CodersByDType coders_;
};

class LosslessMaxCodec final : public Codec {
 public:
  LosslessMaxCodec(CodersByDType coders, std::unique_ptr<Codec> fast)
      : coders_(std::move(coders)), fast_(std::move(fast)) {}
  std::string Spec() const override { return "lossless-max"; }
  absl::StatusOr<CompressedTensor> Compress(const TensorView& tensor) const override {
    KV_ASSIGN_OR_RETURN(CompressedTensor best, coders_.For(tensor.meta().dtype).Compress(tensor));
    KV_ASSIGN_OR_RETURN(CompressedTensor fast, fast_->Compress(tensor));
    if (fast.frame.size() < best.frame.size()) return fast;
    return best;
  }

 private:
  CodersByDType coders_;
  std::unique_ptr<Codec> fast_;
};

absl::StatusOr<std::unique_ptr<Codec>> MakeLosslessCodec() {
  KV_ASSIGN_OR_RETURN(CodersByDType coders,
                      CodersByDType::Make("huff", "qsplit+qhuff", "qsplit+rans"));
  return std::make_unique<LosslessCodec>(std::move(coders));
}

absl::Status NoArgs(const SpecNode& node) {
  if (!node.args.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(Quote(node.name), " takes no arguments (offset ", node.pos, ")"));
  }
  return absl::OkStatus();
}

}  // namespace

void RegisterLosslessPresets(PresetRegistry& r) {
  r.Register(PresetInfo{
      .name = "lossless",
      .summary = "fast bit-exact default: duplicate rows removed when a sample finds them, "
                 "Huffman per byte plane",
      .make = [](const SpecNode& node) -> absl::StatusOr<std::unique_ptr<Codec>> {
        KV_RETURN_IF_ERROR(NoArgs(node));
        return MakeLosslessCodec();
      },
      .usage = "lossless",
      .exactness = PresetExactness::kLossless,
  });
  r.Register(PresetInfo{
      .name = "lossless-max",
      .summary = "best bit-exact ratio at any speed: context-mixing arithmetic coding (cm), "
                 "duplicate rows removed when a sample finds them",
      .make = [](const SpecNode& node) -> absl::StatusOr<std::unique_ptr<Codec>> {
        KV_RETURN_IF_ERROR(NoArgs(node));
        KV_ASSIGN_OR_RETURN(CodersByDType coders,
                            CodersByDType::Make("cm", "qsplit+cm", "qsplit+cm"));
        KV_ASSIGN_OR_RETURN(std::unique_ptr<Codec> fast, MakeLosslessCodec());
        return std::make_unique<LosslessMaxCodec>(std::move(coders), std::move(fast));
      },
      .usage = "lossless-max",
      .exactness = PresetExactness::kLossless,
  });
}

}  // namespace kvcomp

// lossless and lossless-max: bit-exact presets that pick a pipeline per tensor.
//
//  lossless      the fast default. A cheap sample (the first rows of the tensor) decides
//                whether exact duplicate token rows are worth removing; then Huffman per byte
//                plane: "dedupe+huff" or "huff".
//  lossless-max  the best ratio at any speed: the same sample picks "dedupe+cm" or "cm"
//                (adaptive context-mixing arithmetic coding), and the frame is kept only if
//                it beats what `lossless` would write; otherwise that one is kept.
//
// The frame records the concrete pipeline, so decoding needs nothing from the preset.
#include "absl/strings/str_cat.h"
#include "kvcomp/preset.h"
#include "kvcomp/presets/duplicate_rows.h"
#include "kvcomp/quote.h"
#include "kvcomp/status_macros.h"

namespace kvcomp {
namespace {

class LosslessCodec final : public Codec {
 public:
  LosslessCodec(Pipeline plain, Pipeline dedupe)
      : plain_(std::move(plain)), dedupe_(std::move(dedupe)) {}
  std::string Spec() const override { return "lossless"; }
  absl::StatusOr<CompressedTensor> Compress(const TensorView& tensor) const override {
    const bool dedupe = SampleDuplicateFraction(tensor) >= kDedupeWorthIt;
    return CompressWith(dedupe ? dedupe_ : plain_, tensor);
  }

 private:
  Pipeline plain_, dedupe_;
};

class LosslessMaxCodec final : public Codec {
 public:
  LosslessMaxCodec(Pipeline cm, Pipeline dedupe_cm, std::unique_ptr<Codec> fast)
      : cm_(std::move(cm)), dedupe_cm_(std::move(dedupe_cm)), fast_(std::move(fast)) {}
  std::string Spec() const override { return "lossless-max"; }
  absl::StatusOr<CompressedTensor> Compress(const TensorView& tensor) const override {
    const bool dedupe = SampleDuplicateFraction(tensor) >= kDedupeWorthIt;
    KV_ASSIGN_OR_RETURN(CompressedTensor best, CompressWith(dedupe ? dedupe_cm_ : cm_, tensor));
    KV_ASSIGN_OR_RETURN(CompressedTensor fast, fast_->Compress(tensor));
    if (fast.frame.size() < best.frame.size()) return fast;
    return best;
  }

 private:
  Pipeline cm_, dedupe_cm_;
  std::unique_ptr<Codec> fast_;
};

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
        KV_ASSIGN_OR_RETURN(Pipeline plain, Pipeline::FromSpec("huff"));
        KV_ASSIGN_OR_RETURN(Pipeline dedupe, Pipeline::FromSpec("dedupe+huff"));
        return std::make_unique<LosslessCodec>(std::move(plain), std::move(dedupe));
      },
  });
  r.Register(PresetInfo{
      .name = "lossless-max",
      .summary = "best bit-exact ratio at any speed: context-mixing arithmetic coding (cm), "
                 "duplicate rows removed when a sample finds them",
      .make = [](const SpecNode& node) -> absl::StatusOr<std::unique_ptr<Codec>> {
        KV_RETURN_IF_ERROR(NoArgs(node));
        KV_ASSIGN_OR_RETURN(Pipeline cm, Pipeline::FromSpec("cm"));
        KV_ASSIGN_OR_RETURN(Pipeline dedupe_cm, Pipeline::FromSpec("dedupe+cm"));
        KV_ASSIGN_OR_RETURN(Pipeline plain, Pipeline::FromSpec("huff"));
        KV_ASSIGN_OR_RETURN(Pipeline dedupe, Pipeline::FromSpec("dedupe+huff"));
        return std::make_unique<LosslessMaxCodec>(
            std::move(cm), std::move(dedupe_cm),
            std::make_unique<LosslessCodec>(std::move(plain), std::move(dedupe)));
      },
  });
}

}  // namespace kvcomp

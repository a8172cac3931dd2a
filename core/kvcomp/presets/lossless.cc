// lossless and lossless-max: bit-exact presets that pick a pipeline per tensor.
//
//  lossless      the fast default. A cheap sample (the first rows of the tensor) decides
//                whether exact duplicate token rows are worth removing; then Huffman per byte
//                plane: "dedupe+huff" or "huff".
//  lossless-max  the best ratio at any speed: compresses with every candidate pipeline and
//                keeps the smallest frame (each candidate is exact, so any choice is).
//
// The frame records the concrete pipeline, so decoding needs nothing from the preset.
#include <xxhash.h>

#include <unordered_set>

#include "absl/strings/str_cat.h"
#include "kvcomp/preset.h"
#include "kvcomp/status_macros.h"

namespace kvcomp {
namespace {

constexpr uint64_t kSampleRows = 1024;

// Fraction of the first kSampleRows token rows that repeat an earlier row of the sample.
double SampleDuplicateFraction(const TensorView& t) {
  const Geometry g = t.geometry();
  const uint64_t rows = std::min<uint64_t>(g.rows, kSampleRows);
  if (rows < 2 || g.cols == 0) return 0;
  const size_t seg = g.cols * DTypeSize(t.meta().dtype);
  const uint8_t* src = t.bytes().data();
  std::unordered_set<uint64_t> seen;
  uint64_t dups = 0;
  for (uint64_t r = 0; r < rows; ++r) {
    uint64_t h = 0;
    for (uint64_t p = 0; p < g.planes; ++p) {
      h = XXH3_64bits_withSeed(src + (p * g.rows + r) * seg, seg, h);
    }
    dups += !seen.insert(h).second;
  }
  return static_cast<double>(dups) / static_cast<double>(rows);
}

class LosslessCodec final : public Codec {
 public:
  LosslessCodec(Pipeline plain, Pipeline dedupe)
      : plain_(std::move(plain)), dedupe_(std::move(dedupe)) {}
  std::string Spec() const override { return "lossless"; }
  absl::StatusOr<CompressedTensor> Compress(const TensorView& tensor) const override {
    // A 1% duplicate rate already pays for the row map several times over.
    const bool dedupe = SampleDuplicateFraction(tensor) >= 0.01;
    return CompressWith(dedupe ? dedupe_ : plain_, tensor);
  }

 private:
  Pipeline plain_, dedupe_;
};

class LosslessMaxCodec final : public Codec {
 public:
  explicit LosslessMaxCodec(std::vector<Pipeline> candidates)
      : candidates_(std::move(candidates)) {}
  std::string Spec() const override { return "lossless-max"; }
  absl::StatusOr<CompressedTensor> Compress(const TensorView& tensor) const override {
    std::optional<CompressedTensor> best;
    for (const Pipeline& p : candidates_) {
      KV_ASSIGN_OR_RETURN(CompressedTensor c, CompressWith(p, tensor));
      if (!best || c.frame.size() < best->frame.size()) best = std::move(c);
    }
    return std::move(*best);
  }

 private:
  std::vector<Pipeline> candidates_;
};

absl::Status NoArgs(const SpecNode& node) {
  if (!node.args.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", node.name, "' takes no arguments (offset ", node.pos, ")"));
  }
  return absl::OkStatus();
}

}  // namespace

// The candidate pipelines of lossless-max, best first on ../shared/kv (docs/CODEC_NOTES.md).
const std::vector<const char*>& LosslessMaxCandidates() {
  static const std::vector<const char*> c = {"dedupe+huff", "huff"};
  return c;
}

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
      .summary = "best bit-exact ratio at any speed: the smallest of several context-modelling "
                 "pipelines, per tensor",
      .make = [](const SpecNode& node) -> absl::StatusOr<std::unique_ptr<Codec>> {
        KV_RETURN_IF_ERROR(NoArgs(node));
        std::vector<Pipeline> candidates;
        for (const char* spec : LosslessMaxCandidates()) {
          KV_ASSIGN_OR_RETURN(Pipeline p, Pipeline::FromSpec(spec));
          candidates.push_back(std::move(p));
        }
        return std::make_unique<LosslessMaxCodec>(std::move(candidates));
      },
  });
}

}  // namespace kvcomp

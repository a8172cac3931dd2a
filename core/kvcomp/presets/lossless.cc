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
#include <array>
#include <bit>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "kvcomp/preset.h"
#include "kvcomp/status_macros.h"

namespace kvcomp {
namespace {

constexpr uint64_t kSampleRows = 1024;
// Bytes of each head's row the sample hashes. Rows that agree on their first 32 bytes in every
// head are, on real caches, the same token; a rare false match only makes the preset try the
// row map, which is exact and pays for itself or costs a few bytes.
constexpr size_t kSampleRowPrefix = 32;

uint64_t MixRowPrefix(const uint8_t* p, size_t bytes, uint64_t h) {
  // The multiply is off the chain from one word to the next: only the rotate and add are on it.
  const auto mix = [&h](uint64_t word) { h = std::rotl(h, 23) + word * 0x9E3779B97F4A7C15ull; };
  uint64_t word;
  size_t i = 0;
  for (; i + 8 <= bytes; i += 8) mix((std::memcpy(&word, p + i, 8), word));
  if (i < bytes) mix((word = 0, std::memcpy(&word, p + i, bytes - i), word));
  return h;
}

// Fraction of the first kSampleRows token rows that repeat an earlier row of the sample.
// Open addressing in a fixed table: this runs on every tensor, and on a 32 KiB KV block a hash
// set's allocations cost more than the rest of the sample.
double SampleDuplicateFraction(const TensorView& t) {
  const Geometry g = t.geometry();
  const uint64_t rows = std::min<uint64_t>(g.rows, kSampleRows);
  if (rows < 2 || g.cols == 0) return 0;
  const size_t seg = g.cols * DTypeSize(t.meta().dtype);
  const size_t prefix = std::min(seg, kSampleRowPrefix);
  const uint8_t* src = t.bytes().data();
  constexpr size_t kSlots = 2 * kSampleRows;  // a power of two, at most half full
  std::array<uint64_t, kSlots> table{};       // 0 marks an empty slot
  // Plane by plane, so the rows' hash chains are independent and overlap.
  std::array<uint64_t, kSampleRows> hash{};
  for (uint64_t p = 0; p < g.planes; ++p) {
    const uint8_t* plane = src + p * g.rows * seg;
    for (uint64_t r = 0; r < rows; ++r) hash[r] = MixRowPrefix(plane + r * seg, prefix, hash[r]);
  }
  uint64_t dups = 0;
  for (uint64_t r = 0; r < rows; ++r) {
    const uint64_t h = hash[r] | 1;
    for (size_t i = (h >> 32) & (kSlots - 1);; i = (i + 1) & (kSlots - 1)) {
      if (table[i] == 0) {
        table[i] = h;
        break;
      }
      if (table[i] == h) {
        ++dups;
        break;
      }
    }
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
  LosslessMaxCodec(Pipeline cm, Pipeline dedupe_cm, std::unique_ptr<Codec> fast)
      : cm_(std::move(cm)), dedupe_cm_(std::move(dedupe_cm)), fast_(std::move(fast)) {}
  std::string Spec() const override { return "lossless-max"; }
  absl::StatusOr<CompressedTensor> Compress(const TensorView& tensor) const override {
    const bool dedupe = SampleDuplicateFraction(tensor) >= 0.01;
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
        absl::StrCat("'", node.name, "' takes no arguments (offset ", node.pos, ")"));
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

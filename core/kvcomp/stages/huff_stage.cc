// huff: canonical Huffman per byte plane. Each typed stream is coded plane by plane (most
// significant byte first), straight from and into the interleaved words, so `huff` on FP16 is
// `planes+huff` without the extra passes. Each plane is stored raw, as a constant, or as a
// length-limited (11-bit) Huffman code in 4 interleaved segments, whichever is smallest
// (huffman_plane.h). Layout: docs/FORMAT.md#huff-id-23.

#include "core/kvcomp/registry.h"
#include "core/kvcomp/stage_ids.h"
#include "core/kvcomp/stages/byte_planes.h"
#include "core/kvcomp/stages/huffman_plane.h"

namespace kvcomp {
namespace {

using namespace stage_util;

class HuffStage final : public Stage {
 public:
  using Stage::Stage;

  absl::StatusOr<std::vector<StreamDesc>> Plan(absl::Span<const StreamDesc> in) const override {
    return AllOpaque(in);
  }

  absl::Status DoEncode(const Streams& in, Streams* out) const override {
    EncodeBytePlanes(in, out, [](size_t b, size_t n, const Stream& s, std::vector<uint8_t>* buf) {
      const size_t es = ElemSize(s.desc().type);
      huffman::EncodePlane(s.data().data() + (es - 1 - b), es, n, b == 0, buf);
    });
    return absl::OkStatus();
  }

  absl::Status DoDecode(const Streams& encoded, absl::Span<const StreamDesc> want,
                        absl::Span<uint8_t> into, Streams* decoded) const override {
    return DecodeBytePlanes(
        "huff", encoded, want, into, decoded,
        [](ByteReader* br, size_t n, const StreamDesc&, const uint8_t*, uint8_t* scratch,
           const uint8_t** plane) { return huffman::DecodePlane("huff", br, n, scratch, plane); });
  }
};

}  // namespace

void RegisterHuffStage(StageRegistry& r) {
  r.Register(StageInfo{
      .id = stage_id::kHuff,
      .name = "huff",
      .summary = "canonical Huffman per byte plane (raw/constant fallback), 4 interleaved streams",
      .lossless = true,
      .params = {},
      .make = MakeStage<HuffStage>,
  });
}

}  // namespace kvcomp

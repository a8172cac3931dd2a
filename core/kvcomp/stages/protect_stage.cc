// protect(sink, recent): keeps the first `sink` tokens (attention sinks) and the last `recent`
// tokens of every plane exactly, and hands only the tokens between them to the next stages,
// so that `protect(sink=4,recent=64)+quant(bits=8)+zstd(3)` is lossy in the middle only.
// The protected rows go out as unsigned integers of the same width, so that lossy stages
// leave them alone and entropy coders still code them. Layout: docs/FORMAT.md#protect-id-29.
#include <algorithm>

#include "core/kvcomp/registry.h"
#include "core/kvcomp/stage_ids.h"
#include "core/kvcomp/stages/float_io.h"
#include "core/kvcomp/stages/stage_util.h"

namespace kvcomp {
namespace {

using namespace stage_util;

class ProtectStage final : public Stage {
 public:
  using Stage::Stage;
  uint64_t sink() const { return static_cast<uint64_t>(values()[0]); }
  uint64_t recent() const { return static_cast<uint64_t>(values()[1]); }

  // Protected rows at the start and at the end of each plane of `g`.
  uint64_t Head(const Geometry& g) const { return std::min(sink(), g.rows); }
  uint64_t Tail(const Geometry& g) const { return std::min(recent(), g.rows - Head(g)); }

  static bool Splits(const StreamDesc& d) { return !d.opaque() && IsFloatType(d.type); }
  static ElemType RawType(ElemType t) {
    return ElemSize(t) == 4 ? ElemType::kU32 : ElemSize(t) == 2 ? ElemType::kU16 : ElemType::kU8;
  }

  absl::StatusOr<std::vector<StreamDesc>> Plan(absl::Span<const StreamDesc> in) const override {
    std::vector<StreamDesc> out;
    bool any = false;
    for (const StreamDesc& d : in) {
      if (!Splits(d)) {
        out.push_back(d);
        continue;
      }
      any = true;
      const uint64_t kept = Head(d.geom) + Tail(d.geom);
      out.push_back(StreamDesc{RawType(d.type), Geometry{d.geom.planes, kept, d.geom.cols}});
      out.push_back(StreamDesc{d.type, Geometry{d.geom.planes, d.geom.rows - kept, d.geom.cols}});
    }
    if (!any) return absl::InvalidArgumentError("protect takes a float stream; put it first");
    return out;
  }

  absl::Status DoEncode(const Streams& in, Streams* out) const override {
    return EncodeSplitting(in, out, Splits, [&](const Stream& s) {
      const Geometry& g = s.desc().geom;
      const uint64_t head = Head(g), tail = Tail(g), mid = g.rows - head - tail;
      const size_t row = g.cols * ElemSize(s.desc().type);
      std::vector<uint8_t> kept(g.planes * (head + tail) * row);
      std::vector<uint8_t> middle(g.planes * mid * row);
      if (g.size() > 0) {  // an empty tensor may count 2^40 planes: no loop over them
        const uint8_t* src = s.data().data();
        for (uint64_t p = 0; p < g.planes; ++p) {
          const uint8_t* plane = src + p * g.rows * row;
          uint8_t* k = kept.data() + p * (head + tail) * row;
          Copy(k, plane, head * row);
          Copy(k + head * row, plane + (g.rows - tail) * row, tail * row);
          Copy(middle.data() + p * mid * row, plane + head * row, mid * row);
        }
      }
      const Geometry kg{g.planes, head + tail, g.cols};
      out->push_back(Stream::Own(StreamDesc{RawType(s.desc().type), kg}, std::move(kept)));
      out->push_back(
          Stream::Own(StreamDesc{s.desc().type, {g.planes, mid, g.cols}}, std::move(middle)));
      return absl::OkStatus();
    });
  }

  absl::Status DoDecode(const Streams& encoded, absl::Span<const StreamDesc> want,
                        absl::Span<uint8_t> /*into*/, Streams* decoded) const override {
    auto one = [&](const Stream& kept_s, const Stream& middle_s, const StreamDesc& d,
                   Streams* out) {
      const Geometry& g = d.geom;
      const uint64_t head = Head(g), tail = Tail(g), mid = g.rows - head - tail;
      const size_t row = g.cols * ElemSize(d.type);
      const absl::Span<const uint8_t> kept = kept_s.data();
      const absl::Span<const uint8_t> middle = middle_s.data();
      if (kept.size() != g.planes * (head + tail) * row) {
        return Corrupt("protect", "protected rows size");
      }
      if (middle.size() != g.planes * mid * row) return Corrupt("protect", "middle rows size");
      std::vector<uint8_t> bytes(d.bytes());
      if (g.size() > 0) {
        for (uint64_t p = 0; p < g.planes; ++p) {
          uint8_t* plane = bytes.data() + p * g.rows * row;
          const uint8_t* kp = kept.data() + p * (head + tail) * row;
          Copy(plane, kp, head * row);
          Copy(plane + (g.rows - tail) * row, kp + head * row, tail * row);
          Copy(plane + head * row, middle.data() + p * mid * row, mid * row);
        }
      }
      out->push_back(Stream::Own(d, std::move(bytes)));
      return absl::OkStatus();
    };
    return DecodeSplitting("protect", encoded, want, decoded, Splits, one);
  }

 private:
  // memcpy may not be handed a null pointer, even for 0 bytes (empty vectors have none).
  static void Copy(uint8_t* dst, const uint8_t* src, size_t n) {
    if (n > 0) std::memcpy(dst, src, n);
  }
};

}  // namespace

void RegisterProtectStage(StageRegistry& r) {
  r.Register(StageInfo{
      .id = stage_id::kProtect,
      .name = "protect",
      .summary = "first `sink` and last `recent` tokens kept exactly; the middle goes on",
      .lossless = true,
      .params = {{.name = "sink",
                  .type = ParamType::kInt,
                  .default_value = 4,
                  .min = 0,
                  .max = 2147483647,
                  .help = "leading tokens (attention sinks) kept exactly"},
                 {.name = "recent",
                  .type = ParamType::kInt,
                  .default_value = 0,
                  .min = 0,
                  .max = 2147483647,
                  .help = "trailing (most recent) tokens kept exactly"}},
      .make = MakeStage<ProtectStage>,
  });
}

}  // namespace kvcomp

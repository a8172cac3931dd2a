// cast(to): FP32 -> FP16 or BF16, round to nearest even, as an explicit stage.
// Lossy with respect to FP32 (the report carries the measured error); exact, a plain copy,
// when the input already has the target type. Layout: docs/FORMAT.md#cast-id-26.
#include "core/kvcomp/dtype.h"
#include "core/kvcomp/registry.h"
#include "core/kvcomp/stage_ids.h"
#include "core/kvcomp/stages/stage_util.h"

namespace kvcomp {
namespace {

using namespace stage_util;

class CastStage final : public Stage {
 public:
  using Stage::Stage;

  absl::StatusOr<std::vector<StreamDesc>> Plan(absl::Span<const StreamDesc> in) const override {
    std::vector<StreamDesc> out;
    for (const StreamDesc& d : in) {
      if (d.opaque() || d.type == Target()) {
        out.push_back(d);
      } else if (d.type == ElemType::kF32) {
        out.push_back(StreamDesc{Target(), d.geom});
      } else {
        return absl::InvalidArgumentError(absl::StrCat(
            "cast narrows FP32 only, not ", ElemTypeName(d.type), " to ", ElemTypeName(Target())));
      }
    }
    return out;
  }

  absl::Status DoEncode(const Streams& in, Streams* out) const override {
    for (const Stream& s : in) {
      if (s.desc().type != ElemType::kF32) {
        out->push_back(PassThrough(s));
        continue;
      }
      const size_t n = s.desc().geom.size();
      std::vector<float> f(n);
      if (n) std::memcpy(f.data(), s.data().data(), n * 4);
      std::vector<uint16_t> h(n);
      if (Target() == ElemType::kF16) {
        FloatToHalf(f.data(), h.data(), n);
      } else {
        FloatToBf16(f.data(), h.data(), n);
      }
      std::vector<uint8_t> buf(n * 2);
      if (n) std::memcpy(buf.data(), h.data(), n * 2);
      out->push_back(Stream::Own(StreamDesc{Target(), s.desc().geom}, std::move(buf)));
    }
    return absl::OkStatus();
  }

  absl::Status DoDecode(const Streams& encoded, absl::Span<const StreamDesc> want,
                        absl::Span<uint8_t> /*into*/, Streams* decoded) const override {
    for (size_t i = 0; i < want.size(); ++i) {
      if (i >= encoded.size()) return Corrupt("cast", "missing stream");
      if (want[i].type != ElemType::kF32) {
        decoded->push_back(PassThrough(encoded[i]));
        continue;
      }
      const size_t n = want[i].geom.size();
      if (encoded[i].data().size() != n * 2) return Corrupt("cast", "stream size");
      std::vector<uint16_t> h(n);
      if (n) std::memcpy(h.data(), encoded[i].data().data(), n * 2);
      std::vector<float> f(n);
      if (Target() == ElemType::kF16) {
        HalfToFloat(h.data(), f.data(), n);
      } else {
        Bf16ToFloat(h.data(), f.data(), n);
      }
      std::vector<uint8_t> buf(n * 4);
      if (n) std::memcpy(buf.data(), f.data(), n * 4);
      decoded->push_back(Stream::Own(want[i], std::move(buf)));
    }
    return absl::OkStatus();
  }

 private:
  ElemType Target() const { return values()[0] == 0 ? ElemType::kF16 : ElemType::kBF16; }
};

}  // namespace

void RegisterCastStage(StageRegistry& r) {
  r.Register(StageInfo{
      .id = stage_id::kCast,
      .name = "cast",
      .summary = "FP32 -> FP16/BF16, round to nearest even (lossy for FP32 input; exact copy "
                 "when the input already has the target type)",
      .lossless = false,
      .params = {{.name = "to",
                  .type = ParamType::kEnum,
                  .default_value = 0,
                  .min = 0,
                  .max = 1,
                  .choices = {"fp16", "bf16"},
                  .help = "target type"}},
      .make = MakeStage<CastStage>,
  });
}

}  // namespace kvcomp

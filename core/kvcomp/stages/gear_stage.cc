// gear: splits IEEE words into (sign+exponent) and mantissa streams, the seed's "gear split":
// the skewed sign+exponent field and the near-random mantissa are coded apart.
// Layout: docs/FORMAT.md#gear-id-18.
#include "core/kvcomp/registry.h"
#include "core/kvcomp/stage_ids.h"
#include "core/kvcomp/stages/stage_util.h"

namespace kvcomp {
namespace {

using namespace stage_util;

struct Split {
  int mant_bits = 0;  // 0: the stream is not split
  ElemType hi, lo;    // stream types of sign+exp and mantissa
};

Split SplitOf(const StreamDesc& d) {
  if (d.opaque()) return {};
  switch (d.type) {
    case ElemType::kF16:
    case ElemType::kU16:
      return {10, ElemType::kU8, ElemType::kU16};
    case ElemType::kBF16:
      return {7, ElemType::kU16, ElemType::kU8};
    case ElemType::kF32:
    case ElemType::kU32:
      return {23, ElemType::kU16, ElemType::kU32};
    default:
      return {};
  }
}

template <typename W, typename H, typename L>
void SplitWords(const uint8_t* in, size_t n, int mb, uint8_t* hi, uint8_t* lo) {
  const W mask = static_cast<W>((W{1} << mb) - 1);
  for (size_t i = 0; i < n; ++i) {
    W w;
    std::memcpy(&w, in + i * sizeof(W), sizeof(W));
    const H h = static_cast<H>(w >> mb);
    const L l = static_cast<L>(w & mask);
    std::memcpy(hi + i * sizeof(H), &h, sizeof(H));
    std::memcpy(lo + i * sizeof(L), &l, sizeof(L));
  }
}

// Returns false when a field holds bits its width cannot (corrupt input).
template <typename W, typename H, typename L>
bool JoinWords(const uint8_t* hi, const uint8_t* lo, size_t n, int mb, uint8_t* out) {
  const int hb = static_cast<int>(sizeof(W) * 8) - mb;
  uint64_t bad = 0;
  for (size_t i = 0; i < n; ++i) {
    H h;
    L l;
    std::memcpy(&h, hi + i * sizeof(H), sizeof(H));
    std::memcpy(&l, lo + i * sizeof(L), sizeof(L));
    bad |= (static_cast<uint64_t>(h) >> hb) | (static_cast<uint64_t>(l) >> mb);
    const W w = static_cast<W>((static_cast<W>(h) << mb) | static_cast<W>(l));
    std::memcpy(out + i * sizeof(W), &w, sizeof(W));
  }
  return bad == 0;
}

class GearStage final : public Stage {
 public:
  using Stage::Stage;

  absl::StatusOr<std::vector<StreamDesc>> Plan(absl::Span<const StreamDesc> in) const override {
    std::vector<StreamDesc> out;
    for (const StreamDesc& d : in) {
      const Split sp = SplitOf(d);
      if (!sp.mant_bits) {
        out.push_back(d);
        continue;
      }
      out.push_back(StreamDesc{sp.hi, d.geom});
      out.push_back(StreamDesc{sp.lo, d.geom});
    }
    return out;
  }

  absl::Status DoEncode(const Streams& in, Streams* out) const override {
    for (const Stream& s : in) {
      const StreamDesc& d = s.desc();
      const Split sp = SplitOf(d);
      if (!sp.mant_bits) {
        out->push_back(PassThrough(s));
        continue;
      }
      const size_t n = d.geom.size();
      std::vector<uint8_t> hi(n * ElemSize(sp.hi)), lo(n * ElemSize(sp.lo));
      const uint8_t* p = s.data().data();
      if (sp.mant_bits == 10) {
        SplitWords<uint16_t, uint8_t, uint16_t>(p, n, 10, hi.data(), lo.data());
      } else if (sp.mant_bits == 7) {
        SplitWords<uint16_t, uint16_t, uint8_t>(p, n, 7, hi.data(), lo.data());
      } else {
        SplitWords<uint32_t, uint16_t, uint32_t>(p, n, 23, hi.data(), lo.data());
      }
      out->push_back(Stream::Own(StreamDesc{sp.hi, d.geom}, std::move(hi)));
      out->push_back(Stream::Own(StreamDesc{sp.lo, d.geom}, std::move(lo)));
    }
    return absl::OkStatus();
  }

  absl::Status DoDecode(const Streams& encoded, absl::Span<const StreamDesc> want,
                        absl::Span<uint8_t> /*into*/, Streams* decoded) const override {
    size_t k = 0;
    for (const StreamDesc& d : want) {
      const Split sp = SplitOf(d);
      if (!sp.mant_bits) {
        if (k >= encoded.size()) return Corrupt("gear", "missing stream");
        decoded->push_back(PassThrough(encoded[k++]));
        continue;
      }
      const size_t n = d.geom.size();
      if (k + 1 >= encoded.size() || encoded[k].data().size() != n * ElemSize(sp.hi) ||
          encoded[k + 1].data().size() != n * ElemSize(sp.lo)) {
        return Corrupt("gear", "stream size mismatch");
      }
      const uint8_t* hi = encoded[k].data().data();
      const uint8_t* lo = encoded[k + 1].data().data();
      k += 2;
      std::vector<uint8_t> buf(d.bytes());
      bool ok;
      if (sp.mant_bits == 10) {
        ok = JoinWords<uint16_t, uint8_t, uint16_t>(hi, lo, n, 10, buf.data());
      } else if (sp.mant_bits == 7) {
        ok = JoinWords<uint16_t, uint16_t, uint8_t>(hi, lo, n, 7, buf.data());
      } else {
        ok = JoinWords<uint32_t, uint16_t, uint32_t>(hi, lo, n, 23, buf.data());
      }
      if (!ok) return Corrupt("gear", "a field is wider than its bit width");
      decoded->push_back(Stream::Own(d, std::move(buf)));
    }
    return absl::OkStatus();
  }
};

}  // namespace

void RegisterGearStage(StageRegistry& r) {
  r.Register(StageInfo{
      .id = stage_id::kGear,
      .name = "gear",
      .summary = "split IEEE words into sign+exponent and mantissa streams",
      .lossless = true,
      .params = {},
      .make = MakeStage<GearStage>,
  });
}

}  // namespace kvcomp

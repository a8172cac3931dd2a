// planes: splits every multi-byte typed stream into byte planes, most significant byte first.
// FP16 [H,T,D] becomes hi8 (sign, exponent, 2 mantissa bits) and lo8 (the rest of the
// mantissa) with the same geometry: the exponent byte is skewed and compressible, the low byte
// is close to random, so coders treat them apart. Layout: docs/FORMAT.md#planes-id-17.
#include "core/kvcomp/registry.h"
#include "core/kvcomp/stage_ids.h"
#include "core/kvcomp/stages/stage_util.h"

namespace kvcomp {
namespace {

using namespace stage_util;

template <int S>
void Split(const uint8_t* in, size_t n, uint8_t* const* out) {
  for (size_t i = 0; i < n; ++i) {
    for (int b = 0; b < S; ++b) out[b][i] = in[i * S + (S - 1 - b)];
  }
}

template <int S>
void Join(const uint8_t* const* in, size_t n, uint8_t* out) {
  for (size_t i = 0; i < n; ++i) {
    for (int b = 0; b < S; ++b) out[i * S + (S - 1 - b)] = in[b][i];
  }
}

class PlanesStage final : public Stage {
 public:
  using Stage::Stage;

  absl::StatusOr<std::vector<StreamDesc>> Plan(absl::Span<const StreamDesc> in) const override {
    std::vector<StreamDesc> out;
    for (const StreamDesc& d : in) {
      const size_t s = d.opaque() ? 1 : ElemSize(d.type);
      if (s == 1) {
        out.push_back(d);
        continue;
      }
      for (size_t b = 0; b < s; ++b) out.push_back(StreamDesc{ElemType::kU8, d.geom});
    }
    return out;
  }

  absl::Status DoEncode(const Streams& in, Streams* out) const override {
    for (const Stream& s : in) {
      const StreamDesc& d = s.desc();
      const size_t es = d.opaque() ? 1 : ElemSize(d.type);
      if (es == 1) {
        out->push_back(PassThrough(s));
        continue;
      }
      const size_t n = d.geom.size();
      std::vector<std::vector<uint8_t>> planes(es, std::vector<uint8_t>(n));
      uint8_t* ptr[4];
      for (size_t b = 0; b < es; ++b) ptr[b] = planes[b].data();
      if (es == 2) {
        Split<2>(s.data().data(), n, ptr);
      } else {
        Split<4>(s.data().data(), n, ptr);
      }
      for (auto& p : planes) {
        out->push_back(Stream::Own(StreamDesc{ElemType::kU8, d.geom}, std::move(p)));
      }
    }
    return absl::OkStatus();
  }

  absl::Status DoDecode(const Streams& encoded, absl::Span<const StreamDesc> want,
                        absl::Span<uint8_t> /*into*/, Streams* decoded) const override {
    size_t k = 0;
    for (const StreamDesc& d : want) {
      const size_t es = d.opaque() ? 1 : ElemSize(d.type);
      if (es == 1) {
        if (k >= encoded.size()) return stage_util::Corrupt("planes", "missing stream");
        decoded->push_back(PassThrough(encoded[k++]));
        continue;
      }
      const size_t n = d.geom.size();
      const uint8_t* ptr[4];
      for (size_t b = 0; b < es; ++b, ++k) {
        if (k >= encoded.size() || encoded[k].data().size() != n) {
          return stage_util::Corrupt("planes", "plane size mismatch");
        }
        ptr[b] = encoded[k].data().data();
      }
      std::vector<uint8_t> buf(n * es);
      if (es == 2) {
        Join<2>(ptr, n, buf.data());
      } else {
        Join<4>(ptr, n, buf.data());
      }
      decoded->push_back(Stream::Own(d, std::move(buf)));
    }
    return absl::OkStatus();
  }
};

}  // namespace

void RegisterPlanesStage(StageRegistry& r) {
  r.Register(StageInfo{
      .id = stage_id::kPlanes,
      .name = "planes",
      .summary = "byte planes of every multi-byte stream, most significant byte first",
      .lossless = true,
      .params = {},
      .make = MakeStage<PlanesStage>,
  });
}

}  // namespace kvcomp

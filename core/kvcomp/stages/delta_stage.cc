// delta and xor: each element minus (delta, wrapping integer arithmetic on the raw words) or
// XOR (xor) the element of the previous token in the same channel; the first token is kept.
// "gear+delta" is the seed's gear+delta when placed after gear.
// Layout: docs/FORMAT.md#delta-id-19-and-xor-id-20.
#include "core/kvcomp/registry.h"
#include "core/kvcomp/stage_ids.h"
#include "core/kvcomp/stages/stage_util.h"

namespace kvcomp {
namespace {

using namespace stage_util;

// Forward: out[r] = in[r] op in[r-1]. Inverse: out[r] = in[r] op^-1 out[r-1], so the
// reference row is the output already rebuilt.
template <typename W, bool kXor, bool kInverse>
void Run(const uint8_t* in, uint8_t* out, const Geometry& g) {
  const size_t row = g.cols;
  for (uint64_t p = 0; p < g.planes; ++p) {
    const W* src = reinterpret_cast<const W*>(in) + p * g.rows * row;
    W* dst = reinterpret_cast<W*>(out) + p * g.rows * row;
    if (g.rows) std::memcpy(dst, src, row * sizeof(W));
    for (uint64_t r = 1; r < g.rows; ++r) {
      const W* a = src + r * row;
      const W* prev = (kInverse ? static_cast<const W*>(dst) : src) + (r - 1) * row;
      W* o = dst + r * row;
      for (size_t c = 0; c < row; ++c) {
        o[c] = kXor       ? static_cast<W>(a[c] ^ prev[c])
               : kInverse ? static_cast<W>(a[c] + prev[c])
                          : static_cast<W>(a[c] - prev[c]);
      }
    }
  }
}

template <bool kXor>
void Apply(bool inverse, size_t es, const uint8_t* in, uint8_t* out, const Geometry& g) {
  switch (es) {
    case 1:
      return inverse ? Run<uint8_t, kXor, true>(in, out, g) : Run<uint8_t, kXor, false>(in, out, g);
    case 2:
      return inverse ? Run<uint16_t, kXor, true>(in, out, g)
                     : Run<uint16_t, kXor, false>(in, out, g);
    default:
      return inverse ? Run<uint32_t, kXor, true>(in, out, g)
                     : Run<uint32_t, kXor, false>(in, out, g);
  }
}

template <bool kXor>
class TokenDeltaStage final : public Stage {
 public:
  using Stage::Stage;

  absl::StatusOr<std::vector<StreamDesc>> Plan(absl::Span<const StreamDesc> in) const override {
    return std::vector<StreamDesc>(in.begin(), in.end());
  }

  absl::Status DoEncode(const Streams& in, Streams* out) const override {
    return Run(in, false, out);
  }

  absl::Status DoDecode(const Streams& encoded, absl::Span<const StreamDesc> want,
                        absl::Span<uint8_t> /*into*/, Streams* decoded) const override {
    if (encoded.size() != want.size()) return Corrupt(info().name, "stream count");
    return Run(encoded, true, decoded);
  }

 private:
  static absl::Status Run(const Streams& in, bool inverse, Streams* out) {
    for (const Stream& s : in) {
      if (s.desc().opaque()) {
        out->push_back(PassThrough(s));
        continue;
      }
      const size_t es = ElemSize(s.desc().type);
      if (s.data().empty()) {  // nothing to transform (and no memcpy from null)
        out->push_back(Stream::Own(s.desc(), {}));
        continue;
      }
      // Word-aligned copies: the input span may sit at any offset inside a frame.
      std::vector<uint32_t> aligned((s.data().size() + 3) / 4);
      std::memcpy(aligned.data(), s.data().data(), s.data().size());
      std::vector<uint8_t> buf(s.data().size());
      std::vector<uint32_t> result((s.data().size() + 3) / 4);
      Apply<kXor>(inverse, es, reinterpret_cast<const uint8_t*>(aligned.data()),
                  reinterpret_cast<uint8_t*>(result.data()), s.desc().geom);
      std::memcpy(buf.data(), result.data(), buf.size());
      out->push_back(Stream::Own(s.desc(), std::move(buf)));
    }
    return absl::OkStatus();
  }
};

}  // namespace

void RegisterDeltaStage(StageRegistry& r) {
  r.Register(StageInfo{
      .id = stage_id::kDelta,
      .name = "delta",
      .summary = "each element minus the previous token's, same channel (wrapping integers)",
      .lossless = true,
      .params = {},
      .make = MakeStage<TokenDeltaStage<false>>,
  });
  r.Register(StageInfo{
      .id = stage_id::kXor,
      .name = "xor",
      .summary = "each element XOR the previous token's, same channel",
      .lossless = true,
      .params = {},
      .make = MakeStage<TokenDeltaStage<true>>,
  });
}

}  // namespace kvcomp

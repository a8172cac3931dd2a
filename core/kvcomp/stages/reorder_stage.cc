// reorder: a lossless channel permutation. The columns (channels) of a typed stream are sorted
// by mean magnitude, so that channels of similar scale sit side by side; LZ coders downstream
// (planes+zstd, gear+zstd) then see longer runs and repeats. Order-0 coders (huff) and coders
// with per-channel contexts (cm) gain nothing from it by construction.
//
// Layouts. Token-major [T,H,D] is one plane of T x (H*D): the permutation runs over all H*D
// channels, across heads, so the same kind of channel of every head (e.g. K's outlier RoPE
// pair) ends up together. On the real caches that is what pays; sorting within each head's D
// (which the geometry cannot even see) does not. Head-major [H,T,D] is H planes of T x D, and
// an element cannot leave its plane: one permutation of the D channels is shared by every
// plane (measured: cheaper and better than one per head, which breaks the likeness of the
// heads' rows that LZ finds). An element only moves within its token row, and a channel stays
// one column, so per-channel contexts still hold.
//
// The statistic (encoder only, not part of the format): per column, the sum over every plane
// and token of the raw word with the sign bit cleared (FP16/BF16: 15 bits; FP32: the top 16
// of its 31), which orders like |x|, or of the raw word for integer streams (U32: its top 16
// bits); columns are sorted by it, ties by index. Elements are moved as raw words, so every
// bit pattern (NaN payloads included) survives.
//
// The permutation is a typed stream, so any backend, zstd included, can code it.
// Layout: docs/FORMAT.md#reorder-id-28.
#include <algorithm>
#include <numeric>

#include "core/kvcomp/registry.h"
#include "core/kvcomp/stage_ids.h"
#include "core/kvcomp/stages/stage_util.h"

namespace kvcomp {
namespace {

using namespace stage_util;

ElemType IndexType(uint64_t cols) {
  return cols <= 256 ? ElemType::kU8 : cols <= 65536 ? ElemType::kU16 : ElemType::kU32;
}

StreamDesc PermDesc(const StreamDesc& d) {
  const uint64_t rows = d.geom.size() == 0 ? 0 : 1;
  return StreamDesc{IndexType(d.geom.cols), Geometry{1, rows, d.geom.cols}};
}

// The magnitude key of a raw word is (w & mask) >> shift, at most 16 bits.
struct KeyDef {
  uint32_t mask = 0xffffffffu;
  int shift = 0;
};

KeyDef KeyOf(ElemType t) {
  switch (t) {
    case ElemType::kF16:
    case ElemType::kBF16:
      return {0x7fffu, 0};
    case ElemType::kF32:
      return {0x7fffffffu, 15};
    case ElemType::kU32:
      return {0xffffffffu, 16};
    default:
      return {};
  }
}

template <typename W>
W LoadW(const uint8_t* p) {
  W w;
  std::memcpy(&w, p, sizeof(W));
  return w;
}

// The channel order shared by every plane: columns sorted by their key summed over all planes
// and tokens, ties by index.
template <typename W>
std::vector<uint32_t> ComputePerm(const uint8_t* src, const StreamDesc& d) {
  const Geometry& g = d.geom;
  const KeyDef key = KeyOf(d.type);
  std::vector<uint64_t> sum(g.cols, 0);
  for (uint64_t r = 0; r < g.planes * g.rows; ++r) {  // the planes' rows are back to back
    const uint8_t* row = src + r * g.cols * sizeof(W);
    for (uint64_t c = 0; c < g.cols; ++c) {
      sum[c] += (static_cast<uint32_t>(LoadW<W>(row + c * sizeof(W))) & key.mask) >> key.shift;
    }
  }
  std::vector<uint32_t> perm(g.cols);
  std::iota(perm.begin(), perm.end(), 0u);
  std::stable_sort(perm.begin(), perm.end(),
                   [&](uint32_t a, uint32_t b) { return sum[a] < sum[b]; });
  return perm;
}

// Encode (kInverse false): dst column j <- src column perm[j]. Decode: dst perm[j] <- src j.
template <size_t kSize, bool kInverse>
void Permute(const uint8_t* src, uint8_t* dst, const Geometry& g, const uint32_t* perm) {
  const size_t row = g.cols * kSize;
  for (uint64_t r = 0; r < g.planes * g.rows; ++r) {
    const uint8_t* s = src + r * row;
    uint8_t* o = dst + r * row;
    for (uint64_t j = 0; j < g.cols; ++j) {
      if (kInverse) {
        std::memcpy(o + perm[j] * kSize, s + j * kSize, kSize);
      } else {
        std::memcpy(o + j * kSize, s + perm[j] * kSize, kSize);
      }
    }
  }
}

template <bool kInverse>
void PermuteAny(size_t es, const uint8_t* src, uint8_t* dst, const Geometry& g,
                const uint32_t* perm) {
  switch (es) {
    case 1:
      return Permute<1, kInverse>(src, dst, g, perm);
    case 2:
      return Permute<2, kInverse>(src, dst, g, perm);
    default:
      return Permute<4, kInverse>(src, dst, g, perm);
  }
}

class ReorderStage final : public Stage {
 public:
  using Stage::Stage;

  absl::StatusOr<std::vector<StreamDesc>> Plan(absl::Span<const StreamDesc> in) const override {
    std::vector<StreamDesc> out;
    for (const StreamDesc& d : in) {
      // Indices are 32-bit at most (and a real row is far narrower).
      if (!d.opaque() && d.geom.size() != 0 && d.geom.cols > (uint64_t{1} << 32)) {
        return absl::InvalidArgumentError("reorder: more than 2^32 channels in a row");
      }
      out.push_back(d);
      if (!d.opaque()) out.push_back(PermDesc(d));
    }
    return out;
  }

  absl::Status DoEncode(const Streams& in, Streams* out) const override {
    return EncodeSplitting(in, out, IsTyped, [out](const Stream& s) {
      EncodeOne(s, out);
      return absl::OkStatus();
    });
  }

  absl::Status DoDecode(const Streams& encoded, absl::Span<const StreamDesc> want,
                        absl::Span<uint8_t> /*into*/, Streams* decoded) const override {
    return DecodeSplitting("reorder", encoded, want, decoded, IsTyped, DecodeOne);
  }

 private:
  static void EncodeOne(const Stream& s, Streams* out) {
    const StreamDesc& d = s.desc();
    const StreamDesc pd = PermDesc(d);
    if (d.geom.size() == 0) {  // no elements: nothing to sort, an empty permutation stream
      out->push_back(Stream::Own(d, {}));
      out->push_back(Stream::Own(pd, {}));
      return;
    }
    const size_t es = ElemSize(d.type);
    const uint8_t* src = s.data().data();
    const std::vector<uint32_t> perm = es == 1   ? ComputePerm<uint8_t>(src, d)
                                       : es == 2 ? ComputePerm<uint16_t>(src, d)
                                                 : ComputePerm<uint32_t>(src, d);
    std::vector<uint8_t> data(s.data().size());
    PermuteAny<false>(es, src, data.data(), d.geom, perm.data());
    const size_t is = ElemSize(pd.type);
    std::vector<uint8_t> idx(perm.size() * is);
    for (size_t i = 0; i < perm.size(); ++i) {
      const uint32_t v = perm[i];  // little-endian, `is` bytes
      for (size_t b = 0; b < is; ++b) idx[i * is + b] = static_cast<uint8_t>(v >> (8 * b));
    }
    out->push_back(Stream::Own(d, std::move(data)));
    out->push_back(Stream::Own(pd, std::move(idx)));
  }

  static absl::Status DecodeOne(const Stream& data_s, const Stream& perm_s, const StreamDesc& d,
                                Streams* decoded) {
    const StreamDesc pd = PermDesc(d);
    if (data_s.data().size() != d.bytes()) return Corrupt("reorder", "data size");
    if (perm_s.data().size() != pd.bytes()) return Corrupt("reorder", "permutation size");
    if (d.geom.size() == 0) {
      decoded->push_back(Stream::Own(d, {}));
      return absl::OkStatus();
    }
    // Sizes are checked, so `cols` indices are present (no more than the elements).
    const Geometry& g = d.geom;
    const size_t is = ElemSize(pd.type);
    const uint8_t* raw = perm_s.data().data();
    std::vector<uint32_t> perm(g.cols);
    std::vector<uint8_t> seen(g.cols, 0);
    for (uint64_t j = 0; j < g.cols; ++j) {
      uint32_t v = 0;
      for (size_t b = 0; b < is; ++b) v |= static_cast<uint32_t>(raw[j * is + b]) << (8 * b);
      if (v >= g.cols || seen[v]) return Corrupt("reorder", "not a permutation");
      seen[v] = 1;
      perm[j] = v;
    }
    std::vector<uint8_t> buf(d.bytes());
    PermuteAny<true>(ElemSize(d.type), data_s.data().data(), buf.data(), g, perm.data());
    decoded->push_back(Stream::Own(d, std::move(buf)));
    return absl::OkStatus();
  }
};

}  // namespace

void RegisterReorderStage(StageRegistry& r) {
  r.Register(StageInfo{
      .id = stage_id::kReorder,
      .name = "reorder",
      .summary =
          "sort channels by mean magnitude (one permutation for all planes), + the permutation",
      .lossless = true,
      .params = {},
      .make = MakeStage<ReorderStage>,
  });
}

}  // namespace kvcomp

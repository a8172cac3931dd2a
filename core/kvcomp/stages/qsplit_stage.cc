// qsplit: ggml's quantised blocks (Q8_0, Q4_0) taken apart, so that the entropy coders see
// like with like. A Q8_0 block is an FP16 scale and 32 int8 quants; Q4_0 an FP16 scale and 32
// 4-bit quants, two to a byte. Mixed in one stream, the scales' bytes interrupt the quants'
// statistics every 34 bytes; apart, the scales are a small FP16 stream (huff codes its two
// byte planes) and the quants a U8 stream with one column per value position, so a coder
// with channel contexts (rans, qhuff's prediction) sees each position's own distribution.
// The quants are zigzagged: small magnitudes become small codes, which qhuff's k-bit split and
// cm's top-bit contexts rely on; for Huffman it is a relabelling.
// Layout: docs/FORMAT.md#qsplit-id-31.
#include "core/kvcomp/registry.h"
#include "core/kvcomp/stage_ids.h"
#include "core/kvcomp/stages/stage_util.h"

namespace kvcomp {
namespace {

using namespace stage_util;

constexpr size_t kBlockValues = 32;

inline uint8_t ZigZag8(int8_t q) {
  return static_cast<uint8_t>((static_cast<uint8_t>(q) << 1) ^ static_cast<uint8_t>(q >> 7));
}
inline int8_t UnZigZag8(uint8_t z) {
  return static_cast<int8_t>((z >> 1) ^ static_cast<uint8_t>(-(z & 1)));
}

bool TakesStream(const StreamDesc& d) { return IsBlockElem(d.type); }

void SplitQ8(const uint8_t* in, size_t blocks, uint8_t* scales, uint8_t* quants) {
  for (size_t b = 0; b < blocks; ++b, in += 34) {
    scales[2 * b] = in[0];
    scales[2 * b + 1] = in[1];
    uint8_t* q = quants + b * kBlockValues;
    for (size_t j = 0; j < kBlockValues; ++j) q[j] = ZigZag8(static_cast<int8_t>(in[2 + j]));
  }
}

void JoinQ8(const uint8_t* scales, const uint8_t* quants, size_t blocks, uint8_t* out) {
  for (size_t b = 0; b < blocks; ++b, out += 34) {
    out[0] = scales[2 * b];
    out[1] = scales[2 * b + 1];
    const uint8_t* q = quants + b * kBlockValues;
    for (size_t j = 0; j < kBlockValues; ++j) out[2 + j] = static_cast<uint8_t>(UnZigZag8(q[j]));
  }
}

// Q4_0 keeps value j in the low nibble of byte j and value j + 16 in its high nibble.
void SplitQ4(const uint8_t* in, size_t blocks, uint8_t* scales, uint8_t* quants) {
  for (size_t b = 0; b < blocks; ++b, in += 18) {
    scales[2 * b] = in[0];
    scales[2 * b + 1] = in[1];
    uint8_t* q = quants + b * kBlockValues;
    for (size_t j = 0; j < 16; ++j) {
      q[j] = ZigZag8(static_cast<int8_t>((in[2 + j] & 15) - 8));
      q[j + 16] = ZigZag8(static_cast<int8_t>((in[2 + j] >> 4) - 8));
    }
  }
}

bool JoinQ4(const uint8_t* scales, const uint8_t* quants, size_t blocks, uint8_t* out) {
  uint8_t over = 0;  // any code above 15, checked once at the end
  for (size_t b = 0; b < blocks; ++b, out += 18) {
    out[0] = scales[2 * b];
    out[1] = scales[2 * b + 1];
    const uint8_t* q = quants + b * kBlockValues;
    for (size_t j = 0; j < 16; ++j) {
      over |= static_cast<uint8_t>(q[j] | q[j + 16]);
      const uint8_t lo = static_cast<uint8_t>(UnZigZag8(q[j]) + 8);
      const uint8_t hi = static_cast<uint8_t>(UnZigZag8(q[j + 16]) + 8);
      out[2 + j] = static_cast<uint8_t>((lo & 15) | (hi << 4));
    }
  }
  return over < 16;
}

class QsplitStage final : public Stage {
 public:
  using Stage::Stage;

  absl::StatusOr<std::vector<StreamDesc>> Plan(absl::Span<const StreamDesc> in) const override {
    std::vector<StreamDesc> out;
    for (const StreamDesc& d : in) {
      if (!TakesStream(d)) {
        out.push_back(d);
        continue;
      }
      out.push_back(StreamDesc{ElemType::kF16, d.geom});
      out.push_back(
          StreamDesc{ElemType::kU8, Geometry{d.geom.planes, d.geom.rows, d.geom.cols * 32}});
    }
    return out;
  }

  absl::Status DoEncode(const Streams& in, Streams* out) const override {
    return EncodeSplitting(in, out, TakesStream, [out](const Stream& s) {
      const StreamDesc& d = s.desc();
      const size_t blocks = d.geom.size();
      Stream scales = Stream::Allocate(StreamDesc{ElemType::kF16, d.geom}, blocks * 2);
      Stream quants = Stream::Allocate(
          StreamDesc{ElemType::kU8, Geometry{d.geom.planes, d.geom.rows, d.geom.cols * 32}},
          blocks * kBlockValues);
      (d.type == ElemType::kQ8_0 ? SplitQ8 : SplitQ4)(s.data().data(), blocks,
                                                      scales.mutable_data(), quants.mutable_data());
      out->push_back(std::move(scales));
      out->push_back(std::move(quants));
      return absl::OkStatus();
    });
  }

 protected:
  absl::Status DoDecode(const Streams& encoded, absl::Span<const StreamDesc> want,
                        absl::Span<uint8_t> into, Streams* decoded) const override {
    return DecodeSplitting(
        "qsplit", encoded, want, decoded, TakesStream,
        [into](const Stream& scales, const Stream& quants, const StreamDesc& d, Streams* out) {
          const size_t blocks = d.geom.size();
          if (scales.data().size() != blocks * 2 || quants.data().size() != blocks * kBlockValues) {
            return Corrupt("qsplit", "stream sizes");
          }
          uint8_t* dst;
          // want[0] (nothing decoded yet) goes into the caller's buffer when there is one.
          Stream s = Stream::Output(d, out->empty() ? into : absl::Span<uint8_t>(), &dst);
          if (d.type == ElemType::kQ8_0) {
            JoinQ8(scales.data().data(), quants.data().data(), blocks, dst);
          } else if (!JoinQ4(scales.data().data(), quants.data().data(), blocks, dst)) {
            return Corrupt("qsplit", "a Q4_0 quant code above 15");
          }
          out->push_back(std::move(s));
          return absl::OkStatus();
        });
  }
};

}  // namespace

void RegisterQsplitStage(StageRegistry& r) {
  r.Register(StageInfo{
      .id = stage_id::kQsplit,
      .name = "qsplit",
      .summary = "Q8_0/Q4_0 blocks split into their FP16 scales and their quants (zigzag bytes, "
                 "one column per value position), for the entropy coders after it",
      .lossless = true,
      .takes_blocks = true,
      .params = {},
      .make = MakeStage<QsplitStage>,
  });
}

}  // namespace kvcomp

// dedupe: exact duplicate token rows are stored once. A token row is the token's values in
// every head (all planes of the geometry); in layer 0 of a real cache V depends only on the
// token id, so every repeated token repeats its row.
//
// The distinct rows go out token-major, so a value keeps its context channel plane*cols+col,
// and are followed by zero rows for the duplicates: the entropy stages trim a zero tail for a
// few bytes, and the stream keeps a size the decoder can derive. Layout:
// docs/FORMAT.md#dedupe-id-22.
#include <xxhash.h>

#include "core/kvcomp/registry.h"
#include "core/kvcomp/stage_ids.h"
#include "core/kvcomp/stages/stage_util.h"

namespace kvcomp {
namespace {

using namespace stage_util;

class DedupeStage final : public Stage {
 public:
  using Stage::Stage;

  absl::StatusOr<std::vector<StreamDesc>> Plan(absl::Span<const StreamDesc> in) const override {
    std::vector<StreamDesc> out;
    for (const StreamDesc& d : in) {
      if (d.opaque()) {
        out.push_back(d);
        continue;
      }
      out.push_back(StreamDesc{d.type, Geometry{1, d.geom.rows, d.geom.planes * d.geom.cols}});
      out.push_back(StreamDesc{ElemType::kOpaque, {}});
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
                        absl::Span<uint8_t> into, Streams* decoded) const override {
    return DecodeSplitting(
        "dedupe", encoded, want, decoded, IsTyped,
        [into](const Stream& data, const Stream& map, const StreamDesc& d, Streams* out) {
          // want[0] (nothing decoded yet) goes into the caller's buffer when there is one.
          return DecodeOne(data, map, d, out->empty() ? into : absl::Span<uint8_t>(), out);
        });
  }

 private:
  static void EncodeOne(const Stream& s, Streams* out) {
    const Geometry g = s.desc().geom;
    const size_t es = ElemSize(s.desc().type);
    const size_t seg = g.cols * es;           // one plane's part of a row
    const size_t row_bytes = g.planes * seg;  // a whole token row
    const StreamDesc rows_desc{s.desc().type, Geometry{1, g.rows, g.planes * g.cols}};
    if (row_bytes == 0) {
      // An empty tensor may still count 2^40 tokens: no rows to compare, and no loop over them.
      std::vector<uint8_t> map;
      ByteWriter(&map).Varint(0);
      out->push_back(Stream::Own(rows_desc, {}));
      out->push_back(Stream::Own(StreamDesc{ElemType::kOpaque, {}}, std::move(map)));
      return;
    }
    const uint8_t* src = s.data().data();
    // Not zeroed: each distinct row is copied in, and the tail after them zeroed below.
    Stream rows = Stream::Allocate(rows_desc, s.data().size());
    uint8_t* const data = rows.mutable_data();
    std::vector<uint8_t> is_dup(g.rows, 0);
    std::vector<uint64_t> refs;
    // Open addressing over distinct rows; slots hold distinct index + 1.
    size_t cap = 16;
    while (cap < 2 * g.rows) cap <<= 1;
    std::vector<uint64_t> slots(g.rows ? cap : 0, 0);
    std::vector<uint64_t> hashes;
    uint64_t distinct = 0;
    for (uint64_t t = 0; t < g.rows; ++t) {
      uint8_t* row = data + distinct * row_bytes;
      for (uint64_t p = 0; seg > 0 && p < g.planes; ++p) {
        std::memcpy(row + p * seg, src + (p * g.rows + t) * seg, seg);
      }
      const uint64_t h = XXH3_64bits(row, row_bytes);
      size_t i = h & (cap - 1);
      bool dup = false;
      while (slots[i]) {
        const uint64_t j = slots[i] - 1;
        if (hashes[j] == h &&
            (row_bytes == 0 || std::memcmp(data + j * row_bytes, row, row_bytes) == 0)) {
          dup = true;
          refs.push_back(j);
          break;
        }
        i = (i + 1) & (cap - 1);
      }
      if (dup) {
        is_dup[t] = 1;
        continue;
      }
      slots[i] = distinct + 1;
      hashes.push_back(h);
      ++distinct;
    }
    // An empty tensor has no buffer at all: memset may not be handed a null pointer.
    if (distinct < g.rows && row_bytes > 0) {
      std::memset(data + distinct * row_bytes, 0, (g.rows - distinct) * row_bytes);
    }
    std::vector<uint8_t> map;
    ByteWriter(&map).Varint(refs.size());
    if (!refs.empty()) {
      BitWriter bw(&map);
      for (uint64_t t = 0; t < g.rows; ++t) bw.Put(is_dup[t], 1);
      uint64_t seen = 0, r = 0;
      for (uint64_t t = 0; t < g.rows; ++t) {
        if (is_dup[t]) {
          bw.Put(refs[r++], BitsFor(seen));
        } else {
          ++seen;
        }
      }
    }
    out->push_back(std::move(rows));
    out->push_back(Stream::Own(StreamDesc{ElemType::kOpaque, {}}, std::move(map)));
  }

  static absl::Status DecodeOne(const Stream& data_s, const Stream& map_s, const StreamDesc& d,
                                absl::Span<uint8_t> into, Streams* decoded) {
    const Geometry g = d.geom;
    const size_t es = ElemSize(d.type);
    const size_t seg = g.cols * es;
    const size_t row_bytes = g.planes * seg;
    if (data_s.data().size() != d.bytes()) return Corrupt("dedupe", "row data size");
    ByteReader br(map_s.data());
    uint64_t n_dup;
    if (!br.Varint(&n_dup) || n_dup > g.rows) return Corrupt("dedupe", "duplicate count");
    absl::Span<const uint8_t> bits = map_s.data().subspan(br.pos());
    // The bitmap has a bit per row, so a frame of an empty tensor claiming 2^40 rows must carry
    // 2^37 bytes of it: checked before allocating per row (fuzz_stage_decode found a 32 GiB
    // allocation here: regressions/stage_decode/dedupe-empty-tensor-huge-row-count).
    if (n_dup > 0 && bits.size() < (g.rows + 7) / 8) return Corrupt("dedupe", "truncated bitmap");
    std::vector<uint8_t> is_dup(n_dup > 0 ? g.rows : 0, 0);
    std::vector<uint64_t> refs;
    if (n_dup > 0) {
      BitReader bitr(bits);
      uint64_t count = 0;
      for (uint64_t t = 0; t < g.rows; ++t) {
        uint64_t v;
        if (!bitr.Get(1, &v)) return Corrupt("dedupe", "truncated bitmap");
        is_dup[t] = static_cast<uint8_t>(v);
        count += v;
      }
      if (count != n_dup) return Corrupt("dedupe", "bitmap disagrees with count");
      uint64_t seen = 0;
      for (uint64_t t = 0; t < g.rows; ++t) {
        if (!is_dup[t]) {
          ++seen;
          continue;
        }
        uint64_t r;
        if (!bitr.Get(BitsFor(seen), &r) || r >= seen) return Corrupt("dedupe", "bad reference");
        refs.push_back(r);
      }
      if (bitr.bytes_used() != bits.size()) return Corrupt("dedupe", "trailing map bytes");
    } else if (!bits.empty()) {
      return Corrupt("dedupe", "trailing map bytes");
    }
    const uint64_t distinct = g.rows - n_dup;
    const uint8_t* src = data_s.data().data();
    if (TrimmedSize(data_s.data().subspan(distinct * row_bytes)) != 0) {
      return Corrupt("dedupe", "nonzero padding rows");
    }
    // Every row is written below, so the output needs no zeroing.
    uint8_t* buf;
    Stream out = Stream::Output(d, into, &buf);
    uint64_t next = 0, r = 0;
    for (uint64_t t = 0; row_bytes > 0 && t < g.rows; ++t) {
      const uint64_t j = n_dup > 0 && is_dup[t] ? refs[r++] : next++;
      const uint8_t* row = src + j * row_bytes;
      for (uint64_t p = 0; seg > 0 && p < g.planes; ++p) {
        std::memcpy(buf + (p * g.rows + t) * seg, row + p * seg, seg);
      }
    }
    decoded->push_back(std::move(out));
    return absl::OkStatus();
  }
};

}  // namespace

void RegisterDedupeStage(StageRegistry& r) {
  r.Register(StageInfo{
      .id = stage_id::kDedupe,
      .name = "dedupe",
      .summary = "store exact duplicate token rows once, as references",
      .lossless = true,
      .takes_blocks = true,  // rows are compared and moved as bytes
      // A lossy stage would quantise the zero padding rows the decoder checks; after the
      // lossy stage dedupe finds the same duplicates anyway.
      .lossy_may_follow = false,
      .params = {},
      .make = MakeStage<DedupeStage>,
  });
}

}  // namespace kvcomp

// Helpers shared by the lossless transform and entropy stages (planes, gear, delta, dedupe,
// huff, rans, cm, ...). Header-only; every stage stays one .cc file.
//
// Conventions of these stages:
//  - Opaque streams (already entropy coded, or side information such as dedupe's row map)
//    pass through every transform and entropy stage untouched.
//  - Entropy stages trim trailing zero bytes (dedupe leaves a zero tail) and record the count.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "core/kvcomp/internal/byte_io.h"
#include "core/kvcomp/stream.h"

namespace kvcomp::stage_util {

// A copy: the pipeline frees a stage's input streams once the stage returns, so a borrowed
// view of an owned input would dangle.
inline Stream PassThrough(const Stream& s) {
  return Stream::Own(s.desc(), std::vector<uint8_t>(s.data().begin(), s.data().end()));
}

// What every entropy stage plans: one opaque stream per input (typed ones get coded, opaque
// ones pass through).
inline std::vector<StreamDesc> AllOpaque(absl::Span<const StreamDesc> in) {
  std::vector<StreamDesc> out;
  for (const StreamDesc& d : in) out.push_back(StreamDesc{ElemType::kOpaque, d.geom});
  return out;
}

inline absl::Status Corrupt(absl::string_view stage, absl::string_view what) {
  return absl::DataLossError(absl::StrCat(stage, ": corrupt stream: ", what));
}

inline bool IsTyped(const StreamDesc& d) { return !d.opaque(); }

// Stages that split each stream they take into two (dedupe: rows + row map, reorder: columns
// + permutation, protect: exact rows + the rest) and pass the others through untouched.
// `takes(desc)` says which streams split; `one` encodes one such stream, appending its two.
template <typename Takes, typename EncodeOne>
absl::Status EncodeSplitting(const Streams& in, Streams* out, Takes takes, EncodeOne one) {
  for (const Stream& s : in) {
    if (!takes(s.desc())) {
      out->push_back(PassThrough(s));
      continue;
    }
    if (absl::Status st = one(s); !st.ok()) return st;
  }
  return absl::OkStatus();
}

// Inverts EncodeSplitting: `one(first, second, want, decoded)` rebuilds one split stream.
template <typename Takes, typename DecodeOne>
absl::Status DecodeSplitting(absl::string_view stage, const Streams& encoded,
                             absl::Span<const StreamDesc> want, Streams* decoded, Takes takes,
                             DecodeOne one) {
  size_t k = 0;
  for (const StreamDesc& d : want) {
    const size_t n = takes(d) ? 2 : 1;
    if (k + n > encoded.size()) return Corrupt(stage, "missing stream");
    if (n == 1) {
      decoded->push_back(PassThrough(encoded[k]));
    } else if (absl::Status st = one(encoded[k], encoded[k + 1], d, decoded); !st.ok()) {
      return st;
    }
    k += n;
  }
  if (k != encoded.size()) return Corrupt(stage, "stream count");
  return absl::OkStatus();
}

// Number of bytes before the trailing run of zero bytes.
inline size_t TrimmedSize(absl::Span<const uint8_t> b) {
  size_t n = b.size();
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, b.data() + n - 8, 8);
    if (w != 0) break;
    n -= 8;
  }
  while (n > 0 && b[n - 1] == 0) --n;
  return n;
}

// The entropy coders' layout of a stream (huff, rans, cm, qhuff; docs/FORMAT.md, "Coded
// streams"): opaque streams pass; a typed stream becomes varint n, its elements up to the last
// non-zero byte (the zero tail is implicit: dedupe pads), then what `code(s, n, &buf)` appends
// for those n elements.
template <typename Code>
void EncodeTrimmed(const Streams& in, Streams* out, Code code) {
  for (const Stream& s : in) {
    if (s.desc().opaque()) {
      out->push_back(PassThrough(s));
      continue;
    }
    const size_t es = ElemSize(s.desc().type);
    const size_t n = (TrimmedSize(s.data()) + es - 1) / es;
    std::vector<uint8_t> buf;
    buf.reserve(n * es + 64 * es + 16);  // every coder's worst case: raw, plus its headers
    ByteWriter(&buf).Varint(n);
    code(s, n, &buf);
    out->push_back(Stream::Own(StreamDesc{ElemType::kOpaque, s.desc().geom}, std::move(buf)));
  }
}

// Inverts EncodeTrimmed: `decode(&reader, n, want, bytes)` rebuilds the first n elements into
// `bytes` from the reader, which must then be at its end; the tail after them is zeroed here.
// Stream 0 is decoded into `into` when that is given (Stage::DecodeInto), the others into new
// memory.
template <typename Decode>
absl::Status DecodeTrimmed(absl::string_view stage, const Streams& encoded,
                           absl::Span<const StreamDesc> want, absl::Span<uint8_t> into,
                           Streams* decoded, Decode decode) {
  for (size_t i = 0; i < want.size(); ++i) {
    const StreamDesc& d = want[i];
    if (d.opaque()) {
      decoded->push_back(PassThrough(encoded[i]));
      continue;
    }
    ByteReader br(encoded[i].data());
    uint64_t n;
    if (!br.Varint(&n) || n > d.geom.size()) return Corrupt(stage, "element count");
    uint8_t* out;
    Stream s = Stream::Output(d, i == 0 ? into : absl::Span<uint8_t>(), &out);
    if (absl::Status st = decode(&br, static_cast<size_t>(n), d, out); !st.ok()) return st;
    if (br.remaining() != 0) return Corrupt(stage, "trailing bytes");
    const size_t coded = static_cast<size_t>(n) * ElemSize(d.type);
    if (d.bytes() > coded) std::memset(out + coded, 0, d.bytes() - coded);
    decoded->push_back(std::move(s));
  }
  return absl::OkStatus();
}

inline uint16_t Load16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
inline uint32_t Load32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline uint64_t Load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
inline void Store16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }
inline void Store32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }
inline void Store64(uint8_t* p, uint64_t v) { std::memcpy(p, &v, 8); }

// LSB-first bit packing of small fixed-width fields (dedupe references, tables).
class BitWriter {
 public:
  explicit BitWriter(std::vector<uint8_t>* out) : out_(out) {}
  void Put(uint64_t v, int bits) {
    for (int i = 0; i < bits; ++i) {
      if (nbits_ == 0) out_->push_back(0);
      out_->back() |= static_cast<uint8_t>(((v >> i) & 1) << nbits_);
      nbits_ = (nbits_ + 1) & 7;
    }
  }

 private:
  std::vector<uint8_t>* out_;
  int nbits_ = 0;
};

class BitReader {
 public:
  explicit BitReader(absl::Span<const uint8_t> in) : in_(in) {}
  bool Get(int bits, uint64_t* v) {
    if (bits < 0 || bits > 64 || pos_ + static_cast<uint64_t>(bits) > in_.size() * 8) return false;
    uint64_t r = 0;
    for (int i = 0; i < bits; ++i, ++pos_)
      r |= static_cast<uint64_t>((in_[pos_ >> 3] >> (pos_ & 7)) & 1) << i;
    *v = r;
    return true;
  }
  size_t bytes_used() const { return (pos_ + 7) / 8; }

 private:
  absl::Span<const uint8_t> in_;
  uint64_t pos_ = 0;
};

inline int BitsFor(uint64_t n) {  // bits needed to write values 0..n-1
  int b = 0;
  while ((uint64_t{1} << b) < n) ++b;
  return b;
}

}  // namespace kvcomp::stage_util

// Little-endian, bounds-checked byte writing and reading for frame headers and stage
// metadata. The reader never reads past its span: every getter fails instead.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "absl/types/span.h"

namespace kvcomp {

class ByteWriter {
 public:
  explicit ByteWriter(std::vector<uint8_t>* out) : out_(out) {}
  void U8(uint8_t v) { out_->push_back(v); }
  void U32(uint32_t v) { Fixed(v, 4); }
  void U64(uint64_t v) { Fixed(v, 8); }
  void F64(double v) {
    uint64_t u;
    std::memcpy(&u, &v, 8);
    U64(u);
  }
  void Varint(uint64_t v) {
    while (v >= 0x80) {
      out_->push_back(static_cast<uint8_t>(v | 0x80));
      v >>= 7;
    }
    out_->push_back(static_cast<uint8_t>(v));
  }
  void SignedVarint(int64_t v) {
    Varint((static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63));
  }
  void Bytes(absl::Span<const uint8_t> b) { out_->insert(out_->end(), b.begin(), b.end()); }

 private:
  void Fixed(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out_->push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  std::vector<uint8_t>* out_;
};

class ByteReader {
 public:
  explicit ByteReader(absl::Span<const uint8_t> in) : in_(in) {}
  size_t remaining() const { return in_.size() - pos_; }
  size_t pos() const { return pos_; }
  absl::Span<const uint8_t> rest() const { return in_.subspan(pos_); }  // what is left to read

  bool U8(uint8_t* v) {
    if (remaining() < 1) return false;
    *v = in_[pos_++];
    return true;
  }
  bool U32(uint32_t* v) {
    uint64_t u;
    if (!Fixed(4, &u)) return false;
    *v = static_cast<uint32_t>(u);
    return true;
  }
  bool U64(uint64_t* v) { return Fixed(8, v); }
  bool F64(double* v) {
    uint64_t u;
    if (!Fixed(8, &u)) return false;
    std::memcpy(v, &u, 8);
    return true;
  }
  bool Varint(uint64_t* v) {
    uint64_t result = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      uint8_t b;
      if (!U8(&b)) return false;
      result |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) {
        *v = result;
        return true;
      }
    }
    return false;  // more than 10 bytes: malformed
  }
  bool SignedVarint(int64_t* v) {
    uint64_t u;
    if (!Varint(&u)) return false;
    *v = static_cast<int64_t>((u >> 1) ^ (~(u & 1) + 1));
    return true;
  }
  bool Bytes(size_t n, absl::Span<const uint8_t>* out) {
    if (remaining() < n) return false;
    *out = in_.subspan(pos_, n);
    pos_ += n;
    return true;
  }

 private:
  bool Fixed(int n, uint64_t* v) {
    if (remaining() < static_cast<size_t>(n)) return false;
    uint64_t u = 0;
    for (int i = 0; i < n; ++i) u |= static_cast<uint64_t>(in_[pos_ + i]) << (8 * i);
    pos_ += n;
    *v = u;
    return true;
  }
  absl::Span<const uint8_t> in_;
  size_t pos_ = 0;
};

}  // namespace kvcomp

// Length-limited canonical Huffman codes over bytes and the bit streams they are written in,
// shared by the Huffman stages (huff, qhuff) and their tests.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/kvcomp/stages/stage_util.h"

namespace kvcomp::huffman {

inline constexpr int kMaxLen = 11;     // longest code
inline constexpr int kTableBits = 12;  // decode lookup width (>= kMaxLen)

// Code lengths for `freq` (zero frequency -> length 0), every length <= kMaxLen. Needs at
// least two used symbols and frequencies below 2^56 (they are element counts). Limits length by
// halving frequencies until the tree is shallow enough; the result is always a complete prefix
// code. No allocation: small planes call this once per plane, and on a 16K-element plane a
// heap-backed version cost as much as the coding.
inline void BuildLengths(const uint64_t freq_in[256], uint8_t len[256]) {
  uint64_t freq[256];
  std::copy(freq_in, freq_in + 256, freq);
  for (;;) {
    // Leaves in ascending (frequency, symbol) order: one key per symbol, frequency above it.
    uint64_t key[256];
    size_t n = 0;
    for (int s = 0; s < 256; ++s) {
      len[s] = 0;
      if (freq[s]) key[n++] = freq[s] << 8 | static_cast<uint64_t>(s);
    }
    std::sort(key, key + n);
    if (n < 2) return;  // no tree (callers never ask)
    // Two-queue Huffman: leaves sorted, internal nodes created in nondecreasing weight.
    uint64_t w[512];
    uint16_t parent[512];
    for (size_t i = 0; i < n; ++i) w[i] = key[i] >> 8;
    size_t leaf = 0, node = n, next = n;
    auto pick = [&]() -> size_t {
      if (leaf < n && (node >= next || w[leaf] <= w[node])) return leaf++;
      return node++;
    };
    for (size_t k = 0; k + 1 < n; ++k) {
      const size_t a = pick(), b = pick();
      w[next] = w[a] + w[b];
      parent[a] = parent[b] = static_cast<uint16_t>(next);
      ++next;
    }
    uint8_t depth[512];
    depth[next - 1] = 0;
    int maxd = 0;
    for (size_t i = next - 1; i-- > 0;) depth[i] = static_cast<uint8_t>(depth[parent[i]] + 1);
    for (size_t i = 0; i < n; ++i) {
      len[key[i] & 255] = depth[i];
      maxd = std::max<int>(maxd, depth[i]);
    }
    if (maxd <= kMaxLen) return;
    for (int s = 0; s < 256; ++s) {
      if (freq[s]) freq[s] = (freq[s] + 1) / 2;
    }
  }
}

// Canonical codes, bit-reversed for LSB-first streams. Returns false when `len` is not a
// complete prefix code with lengths 1..kMaxLen (corrupt table).
inline bool CanonicalCodes(const uint8_t len[256], uint16_t code[256]) {
  int count[kMaxLen + 1] = {};
  for (int s = 0; s < 256; ++s) {
    if (len[s] > kMaxLen) return false;
    if (len[s]) ++count[len[s]];
  }
  uint64_t kraft = 0;
  for (int l = 1; l <= kMaxLen; ++l) kraft += static_cast<uint64_t>(count[l]) << (kMaxLen - l);
  if (kraft != (uint64_t{1} << kMaxLen)) return false;
  uint32_t next[kMaxLen + 2] = {};
  uint32_t c = 0;  // first code of length l = (first(l-1) + count(l-1)) << 1
  for (int l = 1; l <= kMaxLen; ++l) {
    next[l] = c;
    c = (c + count[l]) << 1;
  }
  for (int s = 0; s < 256; ++s) {
    code[s] = 0;
    if (!len[s]) continue;
    const uint32_t v = next[len[s]]++;
    uint32_t r = 0;
    for (int i = 0; i < len[s]; ++i) r |= ((v >> i) & 1) << (len[s] - 1 - i);
    code[s] = static_cast<uint16_t>(r);
  }
  return true;
}

// An LSB-first bit writer that fills its word from the top: each code enters at the top and
// the word shifts right by the code's length, so the shift amount comes from the code table,
// not from the running bit count, and a symbol's cost on the word's dependency chain is one
// shift and one OR. The valid bits are the top `nb`, the earliest lowest; the bits below them
// are spent or junk. An entry is code << (64 - len) | len: the length in the low bits is junk
// below the valid bits and sums in `nb`. So a caller flushes before the valid bits reach down
// to the length field: at most 59 held for lengths below 32 (huff holds at most 51).
struct BitSink {
  uint8_t* p;
  uint64_t acc = 0;
  uint64_t nb = 0;  // the low 7 bits count the valid bits; the bits above them are junk
  void Put(uint64_t e) {
    acc = (acc >> (e & 63)) | e;
    nb += e;
  }
  void Flush() {  // needs at least one valid bit (every Put adds one or more)
    const unsigned n = nb & 127;
    stage_util::Store64(p, acc >> (64 - n));
    p += n >> 3;
    nb = n & 7;
  }
  void Finish() {
    const unsigned n = nb & 127;
    if (n) stage_util::Store64(p, acc >> (64 - n));
    p += (n + 7) >> 3;
  }
};

// The four segments of a plane of n elements (the huff and qhuff formats): segment k holds
// elements [start[k], start[k] + count[k]); the last may hold up to 3 fewer than the others.
struct Segments {
  size_t start[4], count[4];
  explicit Segments(size_t n) {
    const size_t q = (n + 3) / 4;
    for (int k = 0; k < 4; ++k) {
      start[k] = std::min(n, k * q);
      count[k] = std::min(q, n - start[k]);
    }
  }
};

// Histograms of each of the four segments of n elements, where element i counts as the byte
// bin(i). The segments are walked in lockstep, each counting its even and odd elements in
// separate tables: runs of one value are common (an exponent byte, small quotients), and one
// table would make each increment wait on the one before.
template <typename Bin>
[[gnu::always_inline]] inline void SegmentHistograms(size_t n, Bin bin, uint64_t out[4][256]) {
  const Segments seg(n);
  uint32_t h[8][256] = {};
  const size_t s0 = seg.start[0], s1 = seg.start[1], s2 = seg.start[2], s3 = seg.start[3];
  const size_t pairs = seg.count[3] / 2;  // the last segment is the shortest
  for (size_t i = 0; i < 2 * pairs; i += 2) {
    ++h[0][bin(s0 + i)], ++h[1][bin(s0 + i + 1)], ++h[2][bin(s1 + i)], ++h[3][bin(s1 + i + 1)];
    ++h[4][bin(s2 + i)], ++h[5][bin(s2 + i + 1)], ++h[6][bin(s3 + i)], ++h[7][bin(s3 + i + 1)];
  }
  for (int k = 0; k < 4; ++k) {
    for (size_t i = 2 * pairs; i < seg.count[k]; ++i) ++h[2 * k][bin(seg.start[k] + i)];
    for (int v = 0; v < 256; ++v) out[k][v] = uint64_t{h[2 * k][v]} + h[2 * k + 1][v];
  }
}

// The 64 bits of an LSB-first stream from bit `pos` on, zero past its `size` bytes.
inline uint64_t PeekSafe(const uint8_t* in, size_t size, uint64_t pos) {
  const size_t byte = pos >> 3;
  uint64_t v = 0;
  if (byte + 8 <= size) {
    v = stage_util::Load64(in + byte);
  } else if (byte < size) {
    std::memcpy(&v, in + byte, size - byte);
  }
  return v >> (pos & 7);
}

// A code as the huff and qhuff formats store it: a bitmap of the used symbols among the first
// `symbols` (a multiple of 8), then one 4-bit length per used symbol, ascending, low nibble
// first.
inline void PutCode(const uint8_t len[256], int symbols, std::vector<uint8_t>* out) {
  const size_t at = out->size();
  out->resize(at + static_cast<size_t>(symbols) / 8, 0);
  for (int s = 0; s < symbols; ++s) {
    if (len[s]) (*out)[at + (s >> 3)] |= static_cast<uint8_t>(1 << (s & 7));
  }
  for (int s = 0, half = 0; s < symbols; ++s) {
    if (!len[s]) continue;
    if (half == 0) {
      out->push_back(len[s]);
    } else {
      out->back() |= static_cast<uint8_t>(len[s] << 4);
    }
    half ^= 1;
  }
}

// Reads a code back: its lengths (0 for unused symbols) and canonical codes. Errors name `stage`.
inline absl::Status ReadCode(absl::string_view stage, ByteReader* br, int symbols, uint8_t len[256],
                             uint16_t code[256]) {
  absl::Span<const uint8_t> bitmap;
  if (!br->Bytes(static_cast<size_t>(symbols) / 8, &bitmap)) {
    return stage_util::Corrupt(stage, "truncated table");
  }
  int used = 0;
  for (int s = 0; s < symbols; ++s) used += (bitmap[s >> 3] >> (s & 7)) & 1;
  absl::Span<const uint8_t> nib;
  if (used < 2 || !br->Bytes((used + 1) / 2, &nib)) return stage_util::Corrupt(stage, "bad table");
  std::fill(len, len + 256, 0);
  for (int s = 0, j = 0; s < symbols; ++s) {
    if (!((bitmap[s >> 3] >> (s & 7)) & 1)) continue;
    len[s] = (nib[j >> 1] >> ((j & 1) * 4)) & 15;
    if (len[s] == 0) return stage_util::Corrupt(stage, "zero code length");
    ++j;
  }
  if (!CanonicalCodes(len, code))
    return stage_util::Corrupt(stage, "lengths are not a prefix code");
  return absl::OkStatus();
}

// Reads the 4 varint segment sizes and the segments after them: segment k is seg_size[k] bytes
// at seg_in[k].
inline absl::Status ReadSegments(absl::string_view stage, ByteReader* br, const uint8_t* seg_in[4],
                                 size_t seg_size[4]) {
  uint64_t total = 0;
  for (int k = 0; k < 4; ++k) {
    uint64_t v;
    if (!br->Varint(&v) || v > br->remaining()) {
      return stage_util::Corrupt(stage, "bad segment size");
    }
    seg_size[k] = v;
    total += v;
  }
  absl::Span<const uint8_t> body;
  if (!br->Bytes(total, &body)) return stage_util::Corrupt(stage, "truncated segments");
  for (size_t k = 0, off = 0; k < 4; off += seg_size[k], ++k) seg_in[k] = body.data() + off;
  return absl::OkStatus();
}

}  // namespace kvcomp::huffman

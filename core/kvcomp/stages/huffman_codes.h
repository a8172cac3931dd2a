// Length-limited canonical Huffman codes over bytes, shared by the huff stage and its tests.
#pragma once

#include <algorithm>
#include <cstdint>

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

}  // namespace kvcomp::huffman

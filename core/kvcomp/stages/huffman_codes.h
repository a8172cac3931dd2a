// Length-limited canonical Huffman codes over bytes, shared by the huff stage and its tests.
#pragma once

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <vector>

namespace kvcomp::huffman {

inline constexpr int kMaxLen = 11;     // longest code
inline constexpr int kTableBits = 12;  // decode lookup width (>= kMaxLen)

// Code lengths for `freq` (zero frequency -> length 0), every length <= kMaxLen. Needs at
// least two used symbols. Limits length by halving frequencies until the tree is shallow
// enough; the result is always a complete prefix code.
inline void BuildLengths(const uint64_t freq_in[256], uint8_t len[256]) {
  std::vector<uint64_t> freq(freq_in, freq_in + 256);
  for (;;) {
    std::vector<int> syms;
    for (int s = 0; s < 256; ++s) {
      len[s] = 0;
      if (freq[s]) syms.push_back(s);
    }
    std::sort(syms.begin(), syms.end(),
              [&](int a, int b) { return freq[a] != freq[b] ? freq[a] < freq[b] : a < b; });
    const size_t n = syms.size();
    // Two-queue Huffman: leaves sorted, internal nodes created in nondecreasing weight.
    std::vector<uint64_t> w(2 * n);
    std::vector<int> parent(2 * n, -1);
    for (size_t i = 0; i < n; ++i) w[i] = freq[syms[i]];
    size_t leaf = 0, node = n, next = n;
    auto pick = [&]() -> size_t {
      if (leaf < n && (node >= next || w[leaf] <= w[node])) return leaf++;
      return node++;
    };
    for (size_t k = 0; k + 1 < n; ++k) {
      const size_t a = pick(), b = pick();
      w[next] = w[a] + w[b];
      parent[a] = parent[b] = static_cast<int>(next);
      ++next;
    }
    std::vector<int> depth(2 * n, 0);
    int maxd = 0;
    for (size_t i = next - 1; i-- > 0;) {
      depth[i] = depth[parent[i]] + 1;
    }
    for (size_t i = 0; i < n; ++i) {
      len[syms[i]] = static_cast<uint8_t>(depth[i]);
      maxd = std::max(maxd, depth[i]);
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

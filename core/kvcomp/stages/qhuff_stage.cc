// qhuff: canonical Huffman for quantised integer codes (the zigzag codes that uquant, quant and
// blocknorm emit), modelled the way their statistics call for:
//  - Prediction per channel. Each column (plane p, channel c) is coded as it is, or as the
//    difference from the previous token's code in that column, whichever a count over sampled
//    rows says is smaller. K's low-frequency RoPE channels turn slowly from token to token, so
//    their differences are small; V and the fast-turning K channels are better left alone.
//  - One code for every column, over quotients. A value v is the Huffman code of u = v >> k,
//    then v's low k bits raw, with one k per stream chosen by cost from a sample. The low bits
//    of a quantised code are near-uniform, so this loses little against coding v itself, keeps
//    the alphabet at 64 symbols whatever the codes' range, and lets the decoder take a whole
//    value (code and raw bits) in one table lookup. Values with u >= 63 are escaped.
// On ../shared/kv FP16 at bounded(cos=0.9999,rel_mae=0.01) this beats planes+zstd(1) in ratio
// (docs/CODEC_NOTES.md) at several times its speed.
//
// Per typed stream of 1- or 2-byte elements (wider typed streams are stored raw; opaque ones
// pass), with W = 8 x element size:
//   varint n          elements coded; the elements after them are zero
//   if n > 0: u8 mode 0 raw: n elements, little-endian | 2 coded:
//     u8 flags        bit 0: a prediction bitmap follows (other bits are 0)
//     [bitmap]        planes x cols bits, LSB first, zero-padded to a byte: bit p x cols + c set
//                     means column c of plane p is predicted
//     u8 k            0 .. W - 1
//     8-byte bitmap of the used symbols 0..63, then one 4-bit code length (1..11) per used
//     symbol in ascending symbol order, low nibble first; the lengths form a complete code
//     4 varint segment byte sizes, then the 4 segments: segment j holds elements
//     [j q, min(n, (j + 1) q)), q = ceil(n / 4), as an LSB-first bit stream of, per element,
//     the bit-reversed canonical code of its symbol, then v's low k bits (symbol u < 63, v =
//     u << k | those bits, u << k < 2^W) or W bits holding v (the escape, symbol 63).
//   Element i = (p x rows + t) x cols + c is then x_i = v_i, except in a predicted column
//   with t >= 1: x_i = zz(unzz(v_i) + unzz(x_(i - cols))) in W-bit arithmetic, where
//   zz(s) = (s << 1) ^ (s >> (W - 1)) and unzz is its inverse.
#include <algorithm>
#include <array>
#include <cmath>
#include <memory>

#include "kvcomp/registry.h"
#include "kvcomp/stages/huffman_codes.h"
#include "kvcomp/stages/stage_util.h"
#include "kvcomp/status_macros.h"
#include "kvcomp/vector_clones.h"

namespace kvcomp {
namespace {

using namespace stage_util;
using huffman::BitSink;
using huffman::kMaxLen;
using huffman::PeekSafe;
using huffman::Segments;

constexpr int kSymbols = 64;
constexpr int kEscape = kSymbols - 1;
constexpr uint8_t kModeRaw = 0, kModeCoded = 2;
constexpr uint8_t kFlagPredict = 1;
// Decode table entries: a fast entry holds a whole value and the bits it took; a slow one
// (escapes, and codes too long to hold their raw bits in the table) holds the symbol and its
// code length, flagged, and the raw bits are read apart.
constexpr uint8_t kSlow = 0x80;
// Rows sampled when choosing the columns to predict, and the share of a large stream whose
// histogram chooses k and the code.
constexpr uint64_t kPredictSampleRows = 256;
constexpr size_t kSampledStream = size_t{1} << 16;
constexpr size_t kNarrowTable = size_t{1} << 15;  // fewer elements: an 11-bit decode table

template <typename T>
constexpr int kWidth = 8 * sizeof(T);

template <typename T>
inline T UnZz(T u) {
  return static_cast<T>((u >> 1) ^ static_cast<T>(0 - (u & 1)));
}
template <typename T>
inline T Zz(T s) {
  return static_cast<T>(static_cast<T>(s << 1) ^ static_cast<T>(0 - (s >> (kWidth<T> - 1))));
}

// Sums over the sampled rows t >= 1 (every step-th) of each column's values as they are and of
// their differences from the row above.
template <typename T>
[[gnu::always_inline]] inline void ColumnSums(const T* x, size_t n, const Geometry& g,
                                              uint64_t step, uint64_t* plain, uint64_t* delta) {
  const size_t cols = g.cols;
  for (uint64_t p = 0; p < g.planes; ++p) {
    uint64_t* sp = plain + p * cols;
    uint64_t* sd = delta + p * cols;
    for (uint64_t t = 1; t < g.rows; t += step) {
      const uint64_t base = (p * g.rows + t) * cols;
      if (base >= n) break;
      const size_t w = static_cast<size_t>(std::min<uint64_t>(cols, n - base));
      const T* a = x + base;
      const T* b = a - cols;
      for (size_t c = 0; c < w; ++c) {
        sp[c] += a[c];
        sd[c] += Zz<T>(static_cast<T>(UnZz(a[c]) - UnZz(b[c])));
      }
    }
  }
}

// Forward: out_i = in_i, or in a predicted column below a plane's first row,
// zz(unzz(in_i) - unzz(in_(i - cols))). Inverse (in place, in == out): the row above is the
// one already rebuilt, out_i = zz(unzz(in_i) + unzz(out_(i - cols))).
template <bool kInverse, typename T>
[[gnu::always_inline]] inline void Predict(const T* in, size_t n, const Geometry& g, const T* mask,
                                           T* out) {
  const size_t cols = g.cols;
  for (uint64_t p = 0; p < g.planes; ++p) {
    const T* m = mask + p * cols;
    for (uint64_t t = 0; t < g.rows; ++t) {
      const uint64_t base = (p * g.rows + t) * cols;
      if (base >= n) return;
      const size_t w = static_cast<size_t>(std::min<uint64_t>(cols, n - base));
      const T* a = in + base;
      T* o = out + base;
      if (t == 0) {
        if (!kInverse) std::copy(a, a + w, o);
        continue;
      }
      const T* b = (kInverse ? static_cast<const T*>(out) : in) + base - cols;
      for (size_t c = 0; c < w; ++c) {
        const T prev = UnZz(b[c]) & m[c];
        o[c] = Zz<T>(static_cast<T>(kInverse ? UnZz(a[c]) + prev : UnZz(a[c]) - prev));
      }
    }
  }
}

// Sum and maximum: per-lane partial sums in 32 bits over chunks short enough not to overflow,
// so that the loop vectorises.
template <typename T>
[[gnu::always_inline]] inline void SumMax(const T* v, size_t n, uint64_t* sum, T* max) {
  constexpr size_t kLanes = 16, kChunk = 4096;  // 256 values of at most 2^16 per lane
  uint64_t total = 0;
  T m[kLanes] = {};
  for (size_t base = 0; base < n; base += kChunk) {
    const size_t len = std::min(kChunk, n - base);
    const T* c = v + base;
    uint32_t s[kLanes] = {};
    size_t i = 0;
    for (; i + kLanes <= len; i += kLanes) {
      for (size_t k = 0; k < kLanes; ++k) {
        s[k] += c[i + k];
        m[k] = c[i + k] > m[k] ? c[i + k] : m[k];
      }
    }
    for (; i < len; ++i) s[0] += c[i], m[0] = std::max(m[0], c[i]);
    for (size_t k = 0; k < kLanes; ++k) total += s[k];
  }
  *sum = total;
  *max = *std::max_element(m, m + kLanes);
}

// The passes over every value, compiled for the CPU's widest vectors (vector_clones.h), one
// overload per element type (multiversioned functions cannot be templates in Clang).
#define KV_QHUFF_PASSES(T)                                                                      \
  KV_VECTOR_CLONES void ColumnSumsOf(const T* x, size_t n, const Geometry& g, uint64_t step,    \
                                     uint64_t* plain, uint64_t* delta) {                        \
    ColumnSums(x, n, g, step, plain, delta);                                                    \
  }                                                                                             \
  KV_VECTOR_CLONES void PredictForward(const T* in, size_t n, const Geometry& g, const T* mask, \
                                       T* out) {                                                \
    Predict<false>(in, n, g, mask, out);                                                        \
  }                                                                                             \
  KV_VECTOR_CLONES void PredictInverse(T* x, size_t n, const Geometry& g, const T* mask) {      \
    Predict<true>(x, n, g, mask, x);                                                            \
  }                                                                                             \
  KV_VECTOR_CLONES void SumMaxOf(const T* v, size_t n, uint64_t* sum, T* max) {                 \
    SumMax(v, n, sum, max);                                                                     \
  }
KV_QHUFF_PASSES(uint8_t)
KV_QHUFF_PASSES(uint16_t)
#undef KV_QHUFF_PASSES

// The column masks: all ones for a predicted column, zero for one coded as it is. Empty when
// no column is predicted.
template <typename T>
std::vector<T> ChoosePrediction(const T* x, size_t n, const Geometry& g) {
  if (g.rows < 2 || g.cols == 0) return {};
  std::vector<uint64_t> plain(g.planes * g.cols), delta(g.planes * g.cols);
  ColumnSumsOf(x, n, g, std::max<uint64_t>(1, g.rows / kPredictSampleRows), plain.data(),
               delta.data());
  std::vector<T> mask(plain.size());
  bool any = false;
  for (size_t j = 0; j < mask.size(); ++j) {
    mask[j] = delta[j] < plain[j] ? static_cast<T>(~T{0}) : T{0};
    any |= mask[j] != 0;
  }
  if (!any) mask.clear();
  return mask;
}

// Histogram of min(v >> shift, 255) over 64 evenly spaced chunks covering 1/frac of v.
template <typename T>
void QuotientHistogram(const T* v, size_t n, int shift, size_t frac, uint64_t out[256]) {
  uint32_t h[2][256] = {};
  const size_t chunk = std::max<size_t>(1, n / (64 * frac));
  const size_t chunks = frac > 1 ? 64 : 1;
  for (size_t c = 0; c < chunks; ++c) {
    const size_t start = frac > 1 ? n / 64 * c : 0;
    const size_t m = frac > 1 ? std::min(chunk, n - start) : n;
    const T* p = v + start;
    size_t i = 0;
    for (; i + 2 <= m; i += 2) {
      ++h[0][std::min<uint32_t>(p[i] >> shift, 255)];
      ++h[1][std::min<uint32_t>(p[i + 1] >> shift, 255)];
    }
    if (i < m) ++h[0][std::min<uint32_t>(p[i] >> shift, 255)];
  }
  for (int s = 0; s < 256; ++s) out[s] = uint64_t{h[0][s]} + h[1][s];
}

// The symbol counts for k = shift + d from the histogram of min(v >> shift, 255): bins >= 255
// hold v >= 255 << shift, whose quotients at every d <= 2 are escapes too.
void SymbolCounts(const uint64_t hist[256], int d, uint64_t freq[256]) {
  std::fill(freq, freq + 256, 0);
  for (int b = 0; b < 256; ++b) freq[std::min(b >> d, kEscape)] += hist[b];
}

double CodedBits(const uint64_t freq[256], int k, int width) {
  double total = 0, bits = 0;
  for (int s = 0; s < kSymbols; ++s) total += static_cast<double>(freq[s]);
  for (int s = 0; s < kSymbols; ++s) {
    if (!freq[s]) continue;
    const double f = static_cast<double>(freq[s]);
    bits += f * (-std::log2(f / total) + (s == kEscape ? width : k));
  }
  return bits;
}

uint64_t EncodeEntry(uint32_t bits, unsigned len) {  // see BitSink: len is 1..31
  return uint64_t{bits} << (64 - len) | len;
}

template <typename T>
class QuotientEncoder {
 public:
  QuotientEncoder(int k, const uint8_t len[256], const uint16_t code[256]) : k_(k) {
    for (int s = 0; s < kSymbols; ++s) len_[s] = len[s], code_[s] = code[s];
    // Whole-value entries for the values below 63 << k (at most 4096 of them).
    lim_ = std::min<uint32_t>(uint32_t{kEscape} << k, 4096);
    fast_.resize(lim_);
    for (uint32_t v = 0; v < lim_; ++v) {
      const uint32_t u = v >> k;
      fast_[v] = len[u] ? EncodeEntry(code[u] | (v & ((1u << k) - 1)) << len[u], len[u] + k) : 0;
    }
  }
  // At most 26 valid bits for a value whose symbol is not the escape; an escape flushes
  // between its code and its W bits, leaving at most 7 + W held.
  void Put(BitSink& w, T v) const {
    if (v < lim_) return w.Put(fast_[v]);
    const uint32_t u = static_cast<uint32_t>(v) >> k_;
    if (u < kEscape) {
      return w.Put(EncodeEntry(code_[u] | (v & ((1u << k_) - 1)) << len_[u], len_[u] + k_));
    }
    w.Put(EncodeEntry(code_[kEscape], len_[kEscape]));
    w.Flush();
    w.Put(EncodeEntry(v, kWidth<T>));
  }

 private:
  int k_;
  uint32_t lim_;
  uint8_t len_[kSymbols];
  uint16_t code_[kSymbols];
  std::vector<uint64_t> fast_;
};

// Codes the four segments, segment j into dst + room_start[j] (room for its worst case).
// Returns each segment's size in bytes.
template <typename T>
std::array<size_t, 4> EncodeSegments(const T* v, size_t n, const QuotientEncoder<T>& enc,
                                     uint8_t* dst, const size_t room_start[4]) {
  const Segments seg(n);
  std::array<size_t, 4> size;
  for (int a = 0; a < 4; a += 2) {
    const int b = a + 1;
    BitSink wa{dst + room_start[a]}, wb{dst + room_start[b]};
    const T* sa = v + seg.start[a];
    const T* sb = v + seg.start[b];
    size_t i = 0;
    // Two values per writer between flushes: at most 7 + 2 x 26 = 59 bits held.
    for (; i + 2 <= seg.count[b]; i += 2) {
      enc.Put(wa, sa[i]);
      enc.Put(wb, sb[i]);
      enc.Put(wa, sa[i + 1]);
      enc.Put(wb, sb[i + 1]);
      wa.Flush();
      wb.Flush();
    }
    for (size_t j = i; j < seg.count[a]; ++j) enc.Put(wa, sa[j]), wa.Flush();
    for (size_t j = i; j < seg.count[b]; ++j) enc.Put(wb, sb[j]), wb.Flush();
    wa.Finish();
    wb.Finish();
    size[a] = static_cast<size_t>(wa.p - (dst + room_start[a]));
    size[b] = static_cast<size_t>(wb.p - (dst + room_start[b]));
  }
  return size;
}

template <typename T>
void PutRaw(const T* v, size_t n, std::vector<uint8_t>* out) {
  out->push_back(kModeRaw);
  const size_t at = out->size();
  out->resize(at + n * sizeof(T));
  for (size_t i = 0; i < n; ++i) {
    for (size_t b = 0; b < sizeof(T); ++b)
      out->data()[at + i * sizeof(T) + b] = (v[i] >> (8 * b)) & 255;
  }
}

template <typename T>
void EncodeStream(const T* x, size_t n, const Geometry& g, std::vector<uint8_t>* out) {
  const size_t at = out->size();
  const std::vector<T> mask = ChoosePrediction(x, n, g);
  std::unique_ptr<T[]> res_buf;
  const T* v = x;
  if (!mask.empty()) {
    res_buf.reset(new T[n]);
    PredictForward(x, n, g, mask.data(), res_buf.get());
    v = res_buf.get();
  }
  uint64_t sum;
  T max;
  SumMaxOf(v, n, &sum, &max);
  // k: about log2 of the mean, less 2 (quotients of mean 4 to 8), then the cheapest of that and
  // its neighbours on the histogram.
  const double mean = static_cast<double>(sum) / static_cast<double>(n);
  const int guess =
      std::clamp(static_cast<int>(std::floor(std::log2(mean + 1))) - 2, 0, kWidth<T> - 1);
  const int lo = std::max(0, guess - 1), hi = std::min(kWidth<T> - 1, guess + 1);
  const bool sampled = n >= kSampledStream;
  uint64_t hist[256];
  QuotientHistogram(v, n, lo, sampled ? 16 : 1, hist);
  int k = lo;
  double best = 0;
  uint64_t freq[256];
  for (int c = lo; c <= hi; ++c) {
    SymbolCounts(hist, c - lo, freq);
    const double bits = CodedBits(freq, c, kWidth<T>);
    if (c == lo || bits < best) best = bits, k = c;
  }
  SymbolCounts(hist, k - lo, freq);
  // A sample may miss rare values: every symbol the stream can hold gets a count.
  const uint32_t top = std::min<uint32_t>(static_cast<uint32_t>(max) >> k, kEscape);
  if (sampled) {
    for (uint32_t s = 0; s <= top; ++s) freq[s] = std::max<uint64_t>(freq[s], 1);
  }
  int used = 0;
  for (int s = 0; s < kSymbols; ++s) used += freq[s] != 0;
  if (used < 2) freq[freq[kEscape] ? 0 : kEscape] = 1;  // a code needs two symbols
  uint8_t len[256];
  huffman::BuildLengths(freq, len);
  uint16_t code[256];
  huffman::CanonicalCodes(len, code);

  out->push_back(kModeCoded);
  out->push_back(mask.empty() ? 0 : kFlagPredict);
  if (!mask.empty()) {
    const size_t bits_at = out->size();
    out->resize(bits_at + (mask.size() + 7) / 8, 0);
    for (size_t j = 0; j < mask.size(); ++j) {
      if (mask[j]) (*out)[bits_at + j / 8] |= static_cast<uint8_t>(1 << (j % 8));
    }
  }
  out->push_back(static_cast<uint8_t>(k));
  huffman::PutCode(len, kSymbols, out);
  const QuotientEncoder<T> enc(k, len, code);
  const Segments seg(n);
  size_t room_start[4], total = 0;
  for (int j = 0; j < 4; ++j) {
    room_start[j] = total;
    total += seg.count[j] * (kMaxLen + kWidth<T>) / 8 + 16;
  }
  std::unique_ptr<uint8_t[]> scratch(new uint8_t[total]);  // not zeroed
  const std::array<size_t, 4> size = EncodeSegments(v, n, enc, scratch.get(), room_start);
  const size_t coded = size[0] + size[1] + size[2] + size[3];
  if (out->size() - at + 4 * 5 + coded >= n * sizeof(T)) {  // no smaller than raw
    out->resize(at);
    PutRaw(x, n, out);
    return;
  }
  ByteWriter bw(out);
  for (int j = 0; j < 4; ++j) bw.Varint(size[j]);
  for (int j = 0; j < 4; ++j) {
    const uint8_t* from = scratch.get() + room_start[j];
    out->insert(out->end(), from, from + size[j]);
  }
}

// Split by field, so that the hot loop takes an entry apart with no shifts or masks.
struct DecodeTable {
  std::array<uint16_t, 1u << huffman::kTableBits> value;  // a whole value, or a symbol
  std::array<uint8_t, 1u << huffman::kTableBits> bits;    // bits taken, or kSlow | code length
};

// Decodes a value whose entry is slow (`sym`, code length in `bits`) at bit `pos`; returns
// the bits it took.
template <typename T>
[[gnu::noinline]] uint64_t DecodeSlow(const uint8_t* in, size_t size, uint64_t pos, uint16_t sym,
                                      uint8_t bits, int k, T* out) {
  const unsigned len = bits & 31;
  const uint64_t raw = PeekSafe(in, size, pos + len);
  if (sym == kEscape) {
    *out = static_cast<T>(raw);
    return len + kWidth<T>;
  }
  *out = static_cast<T>(static_cast<uint32_t>(sym) << k | (raw & ((uint64_t{1} << k) - 1)));
  return len + k;
}

// The window of a segment from bit p on, with a marker in its top bit: the lookups of a group
// read at most bits 0..47 (four of at most 12 bits), so the marker is never read as data, and
// after the window has been shifted right by the bits the group took, it sits at bit 63 - taken:
// the count is the window's leading zeros, and no register need track the position per lookup.
inline uint64_t MarkedWindow(const uint8_t* in, uint64_t p) {
  return Load64(in + (p >> 3)) >> (p & 7) | uint64_t{1} << 63;
}

// The groups of the bulk loop: all four segments in lockstep, four values each per group. Every
// segment has as many values left as the last (the first three hold q each), so one index
// addresses all four outputs (segment j writes out[j q + i]). Not inlined: on its own it keeps
// its 4 windows and positions in registers, which inlined into the stream decoder it did not.
template <typename T, int kTableBits>
[[gnu::noinline]] void DecodeGroups(const DecodeTable& t, int k, const uint8_t* const in[4],
                                    const size_t size[4], size_t q, size_t first, size_t groups,
                                    uint64_t pos[4], T* out) {
  constexpr uint32_t kMask = (1u << kTableBits) - 1;
  uint64_t p0 = pos[0], p1 = pos[1], p2 = pos[2], p3 = pos[3];
  T* o = out + first;
  const size_t q2 = 2 * q, q3 = 3 * q;
  // One value per lookup. A slow entry (rare) is decoded out of line from the exact position,
  // and the window is loaded again after it.
#define KV_QHUFF_STEP(j, w, at)                                           \
  {                                                                       \
    const uint32_t e = static_cast<uint32_t>(w) & kMask;                  \
    const uint8_t b = t.bits[e];                                          \
    if (b & kSlow) [[unlikely]] {                                         \
      p##j += static_cast<uint64_t>(__builtin_clzll(w));                  \
      p##j += DecodeSlow(in[j], size[j], p##j, t.value[e], b, k, &o[at]); \
      w = MarkedWindow(in[j], p##j);                                      \
    } else {                                                              \
      o[at] = static_cast<T>(t.value[e]);                                 \
      w >>= b;                                                            \
    }                                                                     \
  }
  for (size_t g = 0; g < groups; ++g, o += 4) {
    uint64_t w0 = MarkedWindow(in[0], p0), w1 = MarkedWindow(in[1], p1);
    uint64_t w2 = MarkedWindow(in[2], p2), w3 = MarkedWindow(in[3], p3);
    // p_j is where the window was loaded; it moves on by the bits taken once the group is done.
#define KV_QHUFF_ROUND(s)         \
  KV_QHUFF_STEP(0, w0, s);        \
  KV_QHUFF_STEP(1, w1, q + (s));  \
  KV_QHUFF_STEP(2, w2, q2 + (s)); \
  KV_QHUFF_STEP(3, w3, q3 + (s))
    KV_QHUFF_ROUND(0);
    KV_QHUFF_ROUND(1);
    KV_QHUFF_ROUND(2);
    KV_QHUFF_ROUND(3);
#undef KV_QHUFF_ROUND
    p0 += static_cast<uint64_t>(__builtin_clzll(w0));
    p1 += static_cast<uint64_t>(__builtin_clzll(w1));
    p2 += static_cast<uint64_t>(__builtin_clzll(w2));
    p3 += static_cast<uint64_t>(__builtin_clzll(w3));
  }
#undef KV_QHUFF_STEP
  pos[0] = p0, pos[1] = p1, pos[2] = p2, pos[3] = p3;
}

template <typename T>
absl::Status DecodeSegments(const DecodeTable& t, int table_bits, int k,
                            const uint8_t* const seg_in[4], const size_t seg_size[4], size_t n,
                            T* out) {
  const Segments seg(n);
  uint64_t pos[4] = {0, 0, 0, 0};
  size_t done = 0;  // values decoded in every segment
  // A group takes at most 4 values of kMaxLen + W bits from each segment, and its loads start
  // no later than its last value: within the segment while p + that <= 8 (size - 8).
  constexpr uint64_t kGroupBits = 4 * (kMaxLen + kWidth<T>);
  for (;;) {
    size_t groups = (seg.count[3] - done) / 4;
    for (int j = 0; j < 4; ++j) {
      const uint64_t safe_bits = seg_size[j] >= 8 ? (seg_size[j] - 8) * 8 : 0;
      groups = std::min<size_t>(groups, pos[j] < safe_bits ? (safe_bits - pos[j]) / kGroupBits : 0);
    }
    if (groups < 2) break;
    if (table_bits == huffman::kTableBits) {
      DecodeGroups<T, huffman::kTableBits>(t, k, seg_in, seg_size, seg.start[1], done, groups, pos,
                                           out);
    } else {
      DecodeGroups<T, kMaxLen>(t, k, seg_in, seg_size, seg.start[1], done, groups, pos, out);
    }
    done += 4 * groups;
  }
  const uint32_t mask = (1u << table_bits) - 1;
  for (int j = 0; j < 4; ++j) {
    T* o = out + seg.start[j] + done;
    for (size_t left = seg.count[j] - std::min(done, seg.count[j]); left; --left, ++o) {
      const uint32_t i = static_cast<uint32_t>(PeekSafe(seg_in[j], seg_size[j], pos[j])) & mask;
      const uint8_t b = t.bits[i];
      if (b & kSlow) {
        pos[j] += DecodeSlow(seg_in[j], seg_size[j], pos[j], t.value[i], b, k, o);
      } else {
        *o = static_cast<T>(t.value[i]);
        pos[j] += b;
      }
    }
    if ((pos[j] + 7) / 8 != seg_size[j]) return Corrupt("qhuff", "segment length mismatch");
  }
  return absl::OkStatus();
}

template <typename T>
absl::Status DecodeStream(ByteReader* br, size_t n, const Geometry& g, T* out) {
  uint8_t mode;
  if (!br->U8(&mode)) return Corrupt("qhuff", "truncated stream");
  if (mode == kModeRaw) {
    absl::Span<const uint8_t> raw;
    if (!br->Bytes(n * sizeof(T), &raw)) return Corrupt("qhuff", "truncated raw stream");
    for (size_t i = 0; i < n; ++i) {
      T v = 0;
      for (size_t b = 0; b < sizeof(T); ++b) v |= static_cast<T>(raw[i * sizeof(T) + b] << (8 * b));
      out[i] = v;
    }
    return absl::OkStatus();
  }
  if (mode != kModeCoded) return Corrupt("qhuff", "unknown mode");
  uint8_t flags, k;
  if (!br->U8(&flags) || (flags & ~kFlagPredict)) return Corrupt("qhuff", "bad flags");
  std::vector<T> mask;
  if (flags & kFlagPredict) {
    if (g.rows < 2) return Corrupt("qhuff", "prediction in a stream of one row");
    absl::Span<const uint8_t> bits;
    const uint64_t columns = g.planes * g.cols;
    if (!br->Bytes((columns + 7) / 8, &bits)) return Corrupt("qhuff", "truncated prediction map");
    mask.resize(columns);
    for (size_t j = 0; j < columns; ++j) {
      mask[j] = (bits[j / 8] >> (j % 8)) & 1 ? static_cast<T>(~T{0}) : T{0};
    }
  }
  if (!br->U8(&k) || k >= kWidth<T>) return Corrupt("qhuff", "bad shift");
  uint8_t len[256];
  uint16_t code[256];
  KV_RETURN_IF_ERROR(huffman::ReadCode("qhuff", br, kSymbols, len, code));
  for (int s = 0; s < kEscape; ++s) {
    // A value u << k | low bits must fit the element.
    if (len[s] && (static_cast<uint64_t>(s) << k) >> kWidth<T>) {
      return Corrupt("qhuff", "symbol out of range for its shift");
    }
  }
  const uint8_t* seg_in[4];
  size_t seg_size[4];
  KV_RETURN_IF_ERROR(huffman::ReadSegments("qhuff", br, seg_in, seg_size));
  const int table_bits = n < kNarrowTable ? kMaxLen : huffman::kTableBits;
  const uint32_t tsize = 1u << table_bits;
  // On the heap, made on a thread's first decode (see huff_stage.cc).
  thread_local std::unique_ptr<DecodeTable> table;
  if (!table) table = std::make_unique<DecodeTable>();
  DecodeTable& t = *table;
  for (int s = 0; s < kSymbols; ++s) {
    const uint32_t l = len[s];
    if (!l) continue;
    if (s != kEscape && l + k <= static_cast<uint32_t>(table_bits)) {
      for (uint32_t r = 0; r < (1u << k); ++r) {
        for (uint32_t i = code[s] | r << l; i < tsize; i += 1u << (l + k)) {
          t.value[i] = static_cast<uint16_t>(static_cast<uint32_t>(s) << k | r);
          t.bits[i] = static_cast<uint8_t>(l + k);
        }
      }
    } else {
      for (uint32_t i = code[s]; i < tsize; i += 1u << l) {
        t.value[i] = static_cast<uint16_t>(s);
        t.bits[i] = static_cast<uint8_t>(kSlow | l);
      }
    }
  }
  if (absl::Status st = DecodeSegments(t, table_bits, k, seg_in, seg_size, n, out); !st.ok()) {
    return st;
  }
  if (!mask.empty()) PredictInverse(out, n, g, mask.data());
  return absl::OkStatus();
}

class QhuffStage final : public Stage {
 public:
  using Stage::Stage;

  absl::StatusOr<std::vector<StreamDesc>> Plan(absl::Span<const StreamDesc> in) const override {
    return AllOpaque(in);
  }

  absl::Status Encode(const Streams& in, Streams* out) const override {
    EncodeTrimmed(in, out, [](const Stream& s, size_t n, std::vector<uint8_t>* buf) {
      const size_t es = ElemSize(s.desc().type);
      if (n == 0) return;
      if (es == 2) {
        EncodeTyped<uint16_t>(s.data(), n, s.desc().geom, buf);
      } else if (es == 1) {
        EncodeTyped<uint8_t>(s.data(), n, s.desc().geom, buf);
      } else {
        buf->push_back(kModeRaw);
        buf->insert(buf->end(), s.data().begin(), s.data().begin() + n * es);
      }
    });
    return absl::OkStatus();
  }

  absl::Status DoDecode(const Streams& encoded, absl::Span<const StreamDesc> want,
                        absl::Span<uint8_t> into, Streams* decoded) const override {
    return DecodeTrimmed(
        "qhuff", encoded, want, into, decoded,
        [](ByteReader* br, size_t n, const StreamDesc& d, uint8_t* out) -> absl::Status {
          const size_t es = ElemSize(d.type);
          if (n == 0) return absl::OkStatus();
          if (es == 2) return DecodeStream(br, n, d.geom, reinterpret_cast<uint16_t*>(out));
          if (es == 1) return DecodeStream(br, n, d.geom, out);
          uint8_t mode;
          absl::Span<const uint8_t> raw;
          if (!br->U8(&mode) || mode != kModeRaw || !br->Bytes(n * es, &raw)) {
            return Corrupt("qhuff", "bad raw stream");
          }
          std::memcpy(out, raw.data(), raw.size());
          return absl::OkStatus();
        });
  }

 private:
  template <typename T>
  static void EncodeTyped(absl::Span<const uint8_t> bytes, size_t n, const Geometry& g,
                          std::vector<uint8_t>* out) {
    // A borrowed input (the caller's tensor) may sit at any address; the coder reads words.
    std::vector<T> aligned;
    const T* x = reinterpret_cast<const T*>(bytes.data());
    if (reinterpret_cast<uintptr_t>(bytes.data()) % alignof(T) != 0) {
      aligned.resize(n);
      std::memcpy(aligned.data(), bytes.data(), n * sizeof(T));
      x = aligned.data();
    }
    EncodeStream(x, n, g, out);
  }
};

}  // namespace

void RegisterQhuffStage(StageRegistry& r) {
  r.Register(StageInfo{
      .id = 30,
      .name = "qhuff",
      .summary = "Huffman for quantised codes: per-channel token prediction, quotient codes with "
                 "raw low bits, 4 interleaved streams",
      .lossless = true,
      .params = {},
      .make = MakeStage<QhuffStage>,
  });
}

}  // namespace kvcomp

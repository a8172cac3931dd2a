#include "core/kvcomp/stages/huffman_plane.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <memory>

#include "core/kvcomp/internal/status_macros.h"
#include "core/kvcomp/internal/vector_clones.h"
#include "core/kvcomp/stages/byte_planes.h"
#include "core/kvcomp/stages/huffman_codes.h"

namespace kvcomp::huffman {
namespace {

using namespace stage_util;

// Planes of fewer elements decode with a kMaxLen-bit table instead of a kTableBits one: half
// the entries to fill, for a pair that fits a little less often. Measured on Llama-shaped
// FP16 K: +18-20% decode at 16K and 24K elements, even at 32K, -7% at 64K, -20% at 96K.
constexpr size_t kNarrowTablePlane = size_t{1} << 15;

constexpr uint8_t kHuff = 2;  // after byte_planes.h's raw (0) and constant (1)
constexpr bool kLittle = std::endian::native == std::endian::little;

// Adds n elements to four interleaved tables (each increment waits less on the one before).
void AddHistogram(const uint8_t* base, size_t stride, size_t n, uint32_t h[4][256]) {
  size_t i = 0;
  if (stride == 2) {
    // One 8-byte load per 4 elements; it reads one byte past element i+3, so stop one early.
    for (; i + 5 <= n; i += 4) {
      const uint64_t v = Load64(base + 2 * i);
      ++h[0][v & 255];
      ++h[1][(v >> 16) & 255];
      ++h[2][(v >> 32) & 255];
      ++h[3][(v >> 48) & 255];
    }
  }
  for (; i + 4 <= n; i += 4) {
    ++h[0][base[i * stride]];
    ++h[1][base[(i + 1) * stride]];
    ++h[2][base[(i + 2) * stride]];
    ++h[3][base[(i + 3) * stride]];
  }
  for (; i < n; ++i) ++h[0][base[i * stride]];
}

// Codes the four segments into `dst`, segment k in [end[k - 1], end[k]) (0 for end[-1]), at
// least its coded size. Returns the bytes each segment took. The writers store 8 bytes at a
// time, which near a segment's end would overwrite the start of the next one, so each
// finishes its last symbols in a local buffer.
// With `pairs` (stride 1, every symbol below 64: qhuff's quotients), two symbols go in per
// entry, pairs[s0 | s1 << 6] holding s0's code followed by s1's (at most 2 x 11 bits, so two
// entries and the 7 bits left over fit the writer's 59): half the table loads and shifts.
template <size_t kStride>
[[gnu::always_inline]] inline std::array<size_t, 4> EncodeSegments(const uint8_t* base, size_t n,
                                                                   const uint64_t enc[256],
                                                                   const uint64_t* pairs,
                                                                   uint8_t* dst,
                                                                   const size_t end[4]) {
  const Segments seg(n);
  const size_t* m = seg.count;
  // A block of 16 symbols writes at most 16 * 11 bits plus an 8-byte store.
  constexpr size_t kBlock = 16, kRoom = kBlock * kMaxLen / 8 + 16;
  std::array<size_t, 4> size;
  // Two segments at a time: two writers' chains already keep the core busy, and four writers'
  // state (12 registers) with their sources spilled to the stack.
  for (int a = 0; a < 4; a += 2) {
    const int b = a + 1;
    uint8_t* const first = a ? dst + end[a - 1] : dst;
    BitSink wa{first}, wb{dst + end[a]};
    const uint8_t* src[2] = {base + seg.start[a] * kStride, base + seg.start[b] * kStride};
    const uint8_t *sa = src[0], *sb = src[1];
    auto room = [&](const BitSink& w, int k) { return w.p + kRoom <= dst + end[k]; };
    size_t i = 0;
    // Four symbols per writer between flushes: at most 7 + 4 * 11 bits in the accumulator.
#define KV_HUFF_PUT4(w, s)    \
  w.Put(enc[s[0]]);           \
  w.Put(enc[s[kStride]]);     \
  w.Put(enc[s[2 * kStride]]); \
  w.Put(enc[s[3 * kStride]]); \
  w.Flush();                  \
  s += 4 * kStride
#define KV_HUFF_PAIRS4(w, s)      \
  w.Put(pairs[s[0] | s[1] << 6]); \
  w.Put(pairs[s[2] | s[3] << 6]); \
  w.Flush();                      \
  s += 4
    if (kStride == 1 && pairs != nullptr) {
      for (; i + kBlock <= m[b] && room(wa, a) && room(wb, b); i += kBlock) {
        for (size_t j = 0; j < kBlock; j += 4) {
          KV_HUFF_PAIRS4(wa, sa);
          KV_HUFF_PAIRS4(wb, sb);
        }
      }
    }
    for (; i + kBlock <= m[b] && room(wa, a) && room(wb, b); i += kBlock) {
      for (size_t j = 0; j < kBlock; j += 4) {
        KV_HUFF_PUT4(wa, sa);
        KV_HUFF_PUT4(wb, sb);
      }
    }
#undef KV_HUFF_PAIRS4
#undef KV_HUFF_PUT4
    // Once a writer is within kRoom bytes of its end, it has under 8 * kRoom bits, so fewer
    // than 8 * kRoom symbols, left; a segment has at most 3 more symbols than the next.
    BitSink* w[2] = {&wa, &wb};
    for (int h = 0; h < 2; ++h) {
      const int k = a + h;
      uint8_t tail[(8 * kRoom + kBlock) * kMaxLen / 8 + 16];
      BitSink t{tail, w[h]->acc, w[h]->nb};
      for (size_t j = i; j < m[k]; ++j) {
        t.Put(enc[src[h][j * kStride]]);
        t.Flush();
      }
      t.Finish();
      std::memcpy(w[h]->p, tail, static_cast<size_t>(t.p - tail));
      size[k] = static_cast<size_t>(w[h]->p + (t.p - tail) - (k ? dst + end[k - 1] : dst));
    }
  }
  return size;
}

// Histogram of 64 evenly spaced contiguous chunks covering 1/`frac` of the plane (cache
// friendly: whole lines, not a strided walk over the tensor).
void SampleHistogram(const uint8_t* base, size_t stride, size_t n, size_t frac, uint64_t out[256]) {
  // One set of tables for all chunks: a small sample's chunks are a few dozen elements, and
  // zeroing and summing tables per chunk cost more than counting them.
  uint32_t h[4][256] = {};
  const size_t chunk = std::max<size_t>(1, n / (64 * frac));
  for (int c = 0; c < 64; ++c) {
    const size_t start = n / 64 * c;
    AddHistogram(base + start * stride, stride, std::min(chunk, n - start), h);
  }
  for (int s = 0; s < 256; ++s) out[s] = uint64_t{h[0][s]} + h[1][s] + h[2][s] + h[3][s];
}

double Entropy(const uint64_t h[256]) {
  double total = 0, bits = 0;
  for (int s = 0; s < 256; ++s) total += static_cast<double>(h[s]);
  for (int s = 0; s < 256; ++s) {
    if (h[s]) bits -= h[s] * std::log2(h[s] / total);
  }
  return total > 0 ? bits / total : 8.0;
}

// Entropy plus the Miller-Madow correction for a sample's size: a sample of N values from
// a uniform byte shows about 255 / (2 N ln 2) bits too little (0.045 bits at N = 4096).
double CorrectedEntropy(const uint64_t h[256]) {
  double total = 0;
  int seen = 0;
  for (int s = 0; s < 256; ++s) total += static_cast<double>(h[s]), seen += h[s] != 0;
  return total > 0 ? Entropy(h) + (seen - 1) / (2 * total * std::log(2.0)) : 8.0;
}

// Planes of at least this many elements are coded from a sample's statistics (below).
constexpr size_t kSampledPlane = size_t{1} << 18;
// Small planes within these sizes are judged raw or not from a quarter sample first.
constexpr size_t kQuickRawMin = size_t{1} << 12, kQuickRawMax = size_t{1} << 14;

// The byte range [lo, hi] of a plane, and the range of its values' low 7 bits [mlo, mhi]: a
// value outside either is absent. For a sign-magnitude top byte the second range is the
// magnitude's, which bounds the symbols of both signs far tighter than [lo, hi] alone.
struct ByteRange {
  int lo, hi, mlo, mhi;
  bool Holds(int s) const { return s >= lo && s <= hi && (s & 127) >= mlo && (s & 127) <= mhi; }
};

ByteRange PlaneRange(const uint8_t* base, size_t stride, size_t n) {
  uint8_t lo = 255, hi = 0, mlo = 127, mhi = 0;
  size_t i = 0;
#if defined(__SSE2__)
  if (stride == 2) {
    // 8 elements per 16 bytes, as 16-bit words whose low byte is the plane's (the other byte is
    // masked off). i + 8 < n, not <=: the plane may start at base + 1 (the high byte), and the
    // 16-byte load would then touch one byte past the last element.
    const __m128i bytes = _mm_set1_epi16(255), low7 = _mm_set1_epi16(127);
    __m128i vlo = bytes, vhi = _mm_setzero_si128(), vmlo = low7, vmhi = vhi;
    for (; i + 8 < n; i += 8) {
      const __m128i w = _mm_loadu_si128(reinterpret_cast<const __m128i*>(base + 2 * i));
      const __m128i b = _mm_and_si128(w, bytes), m = _mm_and_si128(w, low7);
      vlo = _mm_min_epi16(vlo, b), vhi = _mm_max_epi16(vhi, b);
      vmlo = _mm_min_epi16(vmlo, m), vmhi = _mm_max_epi16(vmhi, m);
    }
    alignas(16) int16_t l[8], h[8], ml[8], mh[8];
    _mm_store_si128(reinterpret_cast<__m128i*>(l), vlo);
    _mm_store_si128(reinterpret_cast<__m128i*>(h), vhi);
    _mm_store_si128(reinterpret_cast<__m128i*>(ml), vmlo);
    _mm_store_si128(reinterpret_cast<__m128i*>(mh), vmhi);
    for (int k = 0; k < 8; ++k) {
      lo = std::min<uint8_t>(lo, l[k]), hi = std::max<uint8_t>(hi, h[k]);
      mlo = std::min<uint8_t>(mlo, ml[k]), mhi = std::max<uint8_t>(mhi, mh[k]);
    }
  } else if (stride == 1) {
    // 16 elements per load (qhuff's symbols, one-byte streams), unsigned byte minima and maxima.
    const __m128i low7 = _mm_set1_epi8(127);
    __m128i vlo = _mm_set1_epi8(-1), vhi = _mm_setzero_si128(), vmlo = low7, vmhi = vhi;
    for (; i + 16 <= n; i += 16) {
      const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(base + i));
      const __m128i m = _mm_and_si128(b, low7);
      vlo = _mm_min_epu8(vlo, b), vhi = _mm_max_epu8(vhi, b);
      vmlo = _mm_min_epu8(vmlo, m), vmhi = _mm_max_epu8(vmhi, m);
    }
    alignas(16) uint8_t l[16], h[16], ml[16], mh[16];
    _mm_store_si128(reinterpret_cast<__m128i*>(l), vlo);
    _mm_store_si128(reinterpret_cast<__m128i*>(h), vhi);
    _mm_store_si128(reinterpret_cast<__m128i*>(ml), vmlo);
    _mm_store_si128(reinterpret_cast<__m128i*>(mh), vmhi);
    for (int k = 0; k < 16; ++k) {
      lo = std::min(lo, l[k]), hi = std::max(hi, h[k]);
      mlo = std::min(mlo, ml[k]), mhi = std::max(mhi, mh[k]);
    }
  }
#endif
  for (; i < n; ++i) {
    const uint8_t v = base[i * stride];
    lo = std::min(lo, v), hi = std::max(hi, v);
    mlo = std::min<uint8_t>(mlo, v & 127), mhi = std::max<uint8_t>(mhi, v & 127);
  }
  return ByteRange{lo, hi, mlo, mhi};
}

KV_BMI2_CLONES std::array<size_t, 4> EncodeSegments(const uint8_t* base, size_t stride, size_t n,
                                                    const uint64_t enc[256], const uint64_t* pairs,
                                                    uint8_t* dst, const size_t end[4]) {
  switch (stride) {
    case 1:
      return EncodeSegments<1>(base, n, enc, pairs, dst, end);
    case 2:
      return EncodeSegments<2>(base, n, enc, nullptr, dst, end);
    default:
      return EncodeSegments<4>(base, n, enc, nullptr, dst, end);
  }
}

// Planes of at least this many stride-1 symbols, all below 64, are coded two symbols per entry:
// the 4096-entry pair table costs less than it saves from here.
constexpr size_t kPairPlane = size_t{1} << 16;

// A large plane is coded from the histogram of a 1/8 sample: the full histogram cost more
// than a quarter of its coding. Every symbol the plane can hold (its exact byte ranges, one
// cheap vector pass) gets a count, so that a value the sample missed still has a code. On
// Llama-shaped FP16 K and V the frames came out within 0.01% of the exact code's, either way;
// a plane whose range is far wider than its common values pays up to 2^-11 of the code space
// per value without a count. The segment sizes are known only after coding, so the segments
// are coded into scratch memory and copied after their sizes.

// The plane coded from its exact per-segment counts `seg_freq`, or, when that is null, from the
// estimated counts `estimate` (a sample's).
void CodePlane(const uint8_t* base, size_t stride, size_t n, const uint64_t (*seg_freq)[256],
               const uint64_t* estimate, std::vector<uint8_t>* out) {
  uint64_t freq[256];
  for (int s = 0; s < 256; ++s) {
    freq[s] =
        seg_freq ? seg_freq[0][s] + seg_freq[1][s] + seg_freq[2][s] + seg_freq[3][s] : estimate[s];
  }
  int used = 0, last = 0;
  uint64_t counted = 0;
  for (int s = 0; s < 256; ++s) {
    if (freq[s]) ++used, last = s;
    counted += freq[s];
  }
  if (used == 1) {
    PutConstPlane(static_cast<uint8_t>(last), out);
    return;
  }
  // Coded size: mode, bitmap, lengths, segment sizes (estimated), bits, write slack.
  const auto coded_size = [used](uint64_t bits) {
    return 1 + 32 + (used + 1) / 2 + 4 * 3 + bits / 8 + 4;
  };
  const double scale = static_cast<double>(n) / static_cast<double>(counted);
  // No prefix code beats the entropy, so a plane that even the entropy would not shrink is
  // raw without building one (the tree and its sort are most of a small plane's cost).
  const double entropy_bits = Entropy(freq) * static_cast<double>(n) * (1 - 1e-9);
  if (coded_size(static_cast<uint64_t>(entropy_bits)) >= n) {
    PutRawPlane(base, stride, n, out);
    return;
  }
  uint8_t len[256];
  BuildLengths(freq, len);
  uint64_t bits = 0;
  for (int s = 0; s < 256; ++s) bits += freq[s] * len[s];
  if (coded_size(static_cast<uint64_t>(static_cast<double>(bits) * scale)) >= n) {
    PutRawPlane(base, stride, n, out);
    return;
  }
  uint16_t code[256];
  CanonicalCodes(len, code);
  uint64_t enc[256];  // see BitSink
  for (int s = 0; s < 256; ++s) {
    enc[s] = len[s] ? uint64_t{code[s]} << (64 - len[s]) | len[s] : 0;
  }
  std::unique_ptr<uint64_t[]> pairs;
  if (stride == 1 && last < 64 && n >= kPairPlane) {
    pairs.reset(new uint64_t[64 * 64]);
    for (uint32_t s1 = 0; s1 < 64; ++s1) {
      for (uint32_t s0 = 0; s0 < 64; ++s0) {
        const uint32_t l = len[s0] + len[s1];
        pairs[s0 | s1 << 6] =
            len[s0] && len[s1] ? uint64_t{code[s0] | uint32_t{code[s1]} << len[s0]} << (64 - l) | l
                               : 0;
      }
    }
  }
  const size_t at = out->size();
  out->push_back(kHuff);
  PutCode(len, 256, out);
  ByteWriter bw(out);
  size_t end[4], total = 0;
  if (seg_freq != nullptr) {
    // The segment sizes are known exactly before coding (the writers end on whole bytes), so
    // the segments are coded in place, after their sizes.
    for (int k = 0; k < 4; ++k) {
      uint64_t seg_bits = 0;
      for (int s = 0; s < 256; ++s) seg_bits += seg_freq[k][s] * len[s];
      bw.Varint((seg_bits + 7) / 8);
      total += (seg_bits + 7) / 8;
      end[k] = total;
    }
    const size_t body = out->size();
    out->resize(body + total);
    EncodeSegments(base, stride, n, enc, pairs.get(), out->data() + body, end);
    return;
  }
  const Segments seg(n);
  for (int k = 0; k < 4; ++k) {
    total += seg.count[k] * kMaxLen / 8 + 16;
    end[k] = total;
  }
  std::unique_ptr<uint8_t[]> scratch(new uint8_t[total]);  // not zeroed
  const std::array<size_t, 4> size =
      EncodeSegments(base, stride, n, enc, pairs.get(), scratch.get(), end);
  const size_t coded = size[0] + size[1] + size[2] + size[3];
  if (out->size() - at + 4 * 5 + coded >= n) {  // the sample misjudged the plane
    out->resize(at);
    PutRawPlane(base, stride, n, out);
    return;
  }
  for (int k = 0; k < 4; ++k) bw.Varint(size[k]);
  for (int k = 0; k < 4; ++k) {
    const uint8_t* from = scratch.get() + (k ? end[k - 1] : 0);
    out->insert(out->end(), from, from + size[k]);
  }
}

}  // namespace

// `top`: the most significant byte plane (sign and exponent), never random in practice.
void EncodePlane(const uint8_t* base, size_t stride, size_t n, bool top,
                 std::vector<uint8_t>* out) {
  const bool sampled = n >= kSampledPlane;
  uint64_t freq[256];
  uint64_t seg_freq[4][256];
  if (sampled) {
    // A plane that looks random in a small sample (the low mantissa byte) is stored raw.
    SampleHistogram(base, stride, n, 256, freq);
    if (Entropy(freq) > 7.97) {
      PutRawPlane(base, stride, n, out);
      return;
    }
    SampleHistogram(base, stride, n, 8, freq);
    const ByteRange range = PlaneRange(base, stride, n);
    if (range.lo == range.hi) {
      PutConstPlane(static_cast<uint8_t>(range.lo), out);
      return;
    }
    for (int s = 0; s < 256; ++s) freq[s] = range.Holds(s) ? std::max<uint64_t>(freq[s], 1) : 0;
  } else {
    // A small lower plane (a 32 KiB FP16 tensor's has 2^14 values) is raw whenever it holds more
    // than about 7.91 bits per value: the code's table alone (up to ~180 bytes) then outweighs
    // what it saves. So a quarter sample whose entropy, corrected for its size, is above 7.97
    // picks raw as the full count would, for a quarter of the count (the low mantissa byte).
    if (!top && n >= kQuickRawMin && n <= kQuickRawMax) {
      SampleHistogram(base, stride, n, 4, freq);
      if (CorrectedEntropy(freq) > 7.97) {
        PutRawPlane(base, stride, n, out);
        return;
      }
    }
    SegmentHistograms(
        n, [base, stride](size_t i) { return base[i * stride]; }, seg_freq);
  }
  CodePlane(base, stride, n, sampled ? nullptr : seg_freq, sampled ? freq : nullptr, out);
}

void EncodeCountedPlane(const uint8_t* base, size_t n, const uint64_t seg_freq[4][256],
                        std::vector<uint8_t>* out) {
  CodePlane(base, 1, n, seg_freq, nullptr, out);
}

namespace {

// Runs of up to sizeof(Run) symbols per lookup of (at most) kTableBits bits, split by field so
// that the hot loop needs no shifts and masks to take an entry apart: the symbols (the first in
// the low 8 bits), how far the output moves (the number of symbols) and how many bits they use.
// Pairs (uint16_t) for small planes, runs of up to four (uint32_t) for large ones.
template <typename Run>
struct DecodeTable {
  std::array<Run, 1u << kTableBits> syms;
  std::array<uint8_t, 1u << kTableBits> advance;
  std::array<uint8_t, 1u << kTableBits> bits;
};
// Planes of at least this many symbols decode runs of up to four, smaller ones pairs: the longer
// runs' table costs more to fill than it saves below. On Llama-shaped FP16 quotients (3-4 bits a
// symbol) decode of 4M-symbol planes was 9% faster (median of 8 alternated runs), 256K-512K the
// same, 16K-128K up to 24% slower.
constexpr size_t kLongRunPlane = size_t{1} << 19;

template <typename Run>
[[gnu::always_inline]] inline absl::Status DecodeSegments(
    absl::string_view stage, const DecodeTable<Run>& multi, int table_bits, const uint8_t len[256],
    const uint8_t* const seg_in[4], const size_t seg_size[4], size_t n, uint8_t* out) {
  const Segments seg(n);
  uint8_t* o[4];
  size_t left[4];
  uint64_t pos[4] = {0, 0, 0, 0};
  for (int k = 0; k < 4; ++k) {
    left[k] = seg.count[k];
    o[k] = out + seg.start[k];
  }
  // A group is one 8-byte load and four lookups per segment: at least 57 bits are loaded and
  // four lookups consume at most 48. Each symbol then waits only on a lookup and a shift, and
  // each group on one load. With runs of at most r symbols, a group moves the output at most 4 r
  // elements, and the lookup that moves it one while storing r ends a run of fewer than
  // 4 r groups, so inside `left`.
  const uint64_t group_bits = 4 * static_cast<uint64_t>(table_bits);
  const uint32_t mask = (1u << table_bits) - 1;
  constexpr size_t kPerGroup = 4 * sizeof(Run);
  for (;;) {
    size_t groups = SIZE_MAX;
    for (int k = 0; k < 4; ++k) {
      const uint64_t safe_bits = seg_size[k] >= 8 ? (seg_size[k] - 8) * 8 : 0;
      const size_t by_in = pos[k] < safe_bits ? (safe_bits - pos[k]) / group_bits : 0;
      groups = std::min({groups, by_in, left[k] / kPerGroup});
    }
    if (groups < 2) break;
    uint8_t *o0 = o[0], *o1 = o[1], *o2 = o[2], *o3 = o[3];
    uint64_t p0 = pos[0], p1 = pos[1], p2 = pos[2], p3 = pos[3];
    const uint8_t *i0 = seg_in[0], *i1 = seg_in[1], *i2 = seg_in[2], *i3 = seg_in[3];
#define KV_HUFF_STEP(o, p, bits)                                                             \
  {                                                                                          \
    const uint32_t i = bits & mask;                                                          \
    const Run syms = multi.syms[i];                                                          \
    if constexpr (kLittle) {                                                                 \
      std::memcpy(o, &syms, sizeof(Run));                                                    \
    } else {                                                                                 \
      for (size_t b = 0; b < sizeof(Run); ++b) o[b] = static_cast<uint8_t>(syms >> (8 * b)); \
    }                                                                                        \
    o += multi.advance[i];                                                                   \
    const unsigned used = multi.bits[i];                                                     \
    bits >>= used;                                                                           \
    p += used;                                                                               \
  }
#define KV_HUFF_GROUP(o, p, in)                       \
  {                                                   \
    uint64_t bits = Load64(in + (p >> 3)) >> (p & 7); \
    KV_HUFF_STEP(o, p, bits)                          \
    KV_HUFF_STEP(o, p, bits)                          \
    KV_HUFF_STEP(o, p, bits)                          \
    KV_HUFF_STEP(o, p, bits)                          \
  }
    for (size_t g = 0; g < groups; ++g) {
      KV_HUFF_GROUP(o0, p0, i0);
      KV_HUFF_GROUP(o1, p1, i1);
      KV_HUFF_GROUP(o2, p2, i2);
      KV_HUFF_GROUP(o3, p3, i3);
    }
#undef KV_HUFF_GROUP
#undef KV_HUFF_STEP
    uint8_t* const on[4] = {o0, o1, o2, o3};
    const uint64_t pn[4] = {p0, p1, p2, p3};
    for (int k = 0; k < 4; ++k) {
      left[k] -= static_cast<size_t>(on[k] - o[k]);
      o[k] = on[k];
      pos[k] = pn[k];
    }
  }
  for (int k = 0; k < 4; ++k) {
    while (left[k]) {
      // An entry's first symbol is the one its bits start with, whatever follows it.
      const auto s =
          static_cast<uint8_t>(multi.syms[PeekSafe(seg_in[k], seg_size[k], pos[k]) & mask]);
      *o[k]++ = s;
      pos[k] += len[s];
      --left[k];
    }
    if ((pos[k] + 7) / 8 != seg_size[k]) return Corrupt(stage, "segment length mismatch");
  }
  return absl::OkStatus();
}

KV_BMI2_CLONES absl::Status DecodePairs(absl::string_view stage, const DecodeTable<uint16_t>& t,
                                        int table_bits, const uint8_t len[256],
                                        const uint8_t* const seg_in[4], const size_t seg_size[4],
                                        size_t n, uint8_t* out) {
  return DecodeSegments(stage, t, table_bits, len, seg_in, seg_size, n, out);
}
KV_BMI2_CLONES absl::Status DecodeRuns(absl::string_view stage, const DecodeTable<uint32_t>& t,
                                       int table_bits, const uint8_t len[256],
                                       const uint8_t* const seg_in[4], const size_t seg_size[4],
                                       size_t n, uint8_t* out) {
  return DecodeSegments(stage, t, table_bits, len, seg_in, seg_size, n, out);
}

// One run's entries: from `first` on, every 2^bits-th, decode the `count` symbols `syms`, `bits`
// bits in all.
template <typename Run>
inline void FillRun(uint32_t mask, uint32_t first, uint32_t syms, uint32_t count, uint32_t bits,
                    DecodeTable<Run>* t) {
  for (uint32_t i = first; i <= mask; i += 1u << bits) {
    t->syms[i] = static_cast<Run>(syms);
    t->advance[i] = static_cast<uint8_t>(count);
    t->bits[i] = static_cast<uint8_t>(bits);
  }
}

// The run's entries, then each symbol whose code still fits the table after it (shortest first,
// from by_len) extends it, up to max_run symbols. A run is written after the shorter one it
// extends, so each entry ends with the longest run its bits begin with: one store per entry and
// run length.
template <typename Run>
void FillRuns(const uint8_t len[256], const uint16_t code[256], const uint8_t* by_len, int used,
              uint32_t mask, uint32_t first, uint32_t syms, uint32_t count, uint32_t bits,
              DecodeTable<Run>* t) {
  constexpr uint32_t max_run = sizeof(Run);
  FillRun(mask, first, syms, count, bits, t);
  if (count == max_run) return;
  for (int b = 0; b < used && (1u << (bits + len[by_len[b]])) <= mask + 1; ++b) {
    const uint32_t s = by_len[b];
    const uint32_t next = first | uint32_t{code[s]} << bits, more = syms | s << (8 * count);
    // The last level in place: a small plane's pairs are most of its table's cost.
    if (count + 1 == max_run) {
      FillRun(mask, next, more, count + 1, bits + len[s], t);
    } else {
      FillRuns(len, code, by_len, used, mask, next, more, count + 1, bits + len[s], t);
    }
  }
}

// This thread's decode table of a code, table_bits wide: up to sizeof(Run) symbols per lookup,
// filled run by run (a run of l bits owns every 2^l-th entry), where a pass over the entries took
// a dependent lookup per symbol. On the heap, made on a thread's first decode: static
// thread_local arrays would be allocated and zeroed in every thread of the process (gRPC's
// included), 16-24 KiB each.
template <typename Run>
const DecodeTable<Run>& FilledTable(const uint8_t len[256], const uint16_t code[256],
                                    int table_bits) {
  thread_local std::unique_ptr<DecodeTable<Run>> table;
  if (!table) table = std::make_unique<DecodeTable<Run>>();
  int used = 0;
  for (int s = 0; s < 256; ++s) used += len[s] != 0;
  uint8_t by_len[256];  // the used symbols, shortest code first
  {
    int first[kMaxLen + 2] = {};  // where codes of length l start in by_len
    for (int s = 0; s < 256; ++s) {
      if (len[s]) ++first[len[s] + 1];
    }
    for (int l = 1; l <= kMaxLen; ++l) first[l + 1] += first[l];
    for (int s = 0; s < 256; ++s) {
      if (len[s]) by_len[first[len[s]]++] = static_cast<uint8_t>(s);
    }
  }
  for (int a = 0; a < used; ++a) {
    const uint32_t s = by_len[a];
    FillRuns(len, code, by_len, used, (1u << table_bits) - 1, code[s], s, 1, len[s], table.get());
  }
  return *table;
}

}  // namespace

absl::Status DecodePlane(absl::string_view stage, ByteReader* br, size_t n, uint8_t* scratch,
                         const uint8_t** plane, uint8_t* bound) {
  uint8_t mode;
  if (!br->U8(&mode)) return Corrupt(stage, "truncated plane");
  if (absl::Status st; DecodePlainPlane(stage, mode, br, n, scratch, plane, &st)) {
    if (bound) *bound = mode == kPlaneConst && n > 0 ? **plane : 255;
    return st;
  }
  if (mode != kHuff) return Corrupt(stage, "unknown plane mode");
  uint8_t len[256];
  uint16_t code[256];
  KV_RETURN_IF_ERROR(ReadCode(stage, br, 256, len, code));
  if (bound) {
    *bound = 0;
    for (int s = 0; s < 256; ++s) *bound = len[s] ? static_cast<uint8_t>(s) : *bound;
  }
  const uint8_t* seg_in[4];
  size_t seg_size[4];
  KV_RETURN_IF_ERROR(ReadSegments(stage, br, seg_in, seg_size));
  *plane = scratch;
  // On a 32 KiB tensor the table costs as much as decoding the plane, so small planes use the
  // narrowest table the codes allow (half the entries; a run fits a little less often).
  const int table_bits = n < kNarrowTablePlane ? kMaxLen : kTableBits;
  if (n >= kLongRunPlane) {
    return DecodeRuns(stage, FilledTable<uint32_t>(len, code, table_bits), table_bits, len, seg_in,
                      seg_size, n, scratch);
  }
  return DecodePairs(stage, FilledTable<uint16_t>(len, code, table_bits), table_bits, len, seg_in,
                     seg_size, n, scratch);
}

}  // namespace kvcomp::huffman

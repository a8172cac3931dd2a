#include "core/kvcomp/stages/qhuff_split.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cstring>

#include "core/kvcomp/internal/vector_clones.h"
#include "core/kvcomp/stages/stage_util.h"

namespace kvcomp::qhuff {
namespace {

using stage_util::Load16;
using stage_util::Store16;

// The low k bits of each value, bit-sliced in blocks of 16 values: block g is k 16-bit words,
// bit j of word b being bit b of value 16 g + j (the last block padded with zeros). Slicing
// makes both directions lane-parallel with no per-lane shift counts: a multiply by 2^(15 - j)
// moves bit j of a word to the top of lane j, and a lane's bit b lands at bit j of the word by
// a constant shift per lane. Unpacking costs a few vector operations per bit per 16 values.

// Block g of the split: from its 16 values (16-bit lanes, the last block zero-padded), the
// symbols min(v >> k, 63) at sym and the k words of low bits at low. Returns the lanes holding
// an escape (bit j for value j). One pass for both, so the values are read once and the
// escapes found without a search over the symbols.
[[gnu::always_inline]] inline uint32_t SplitBlock(const uint16_t* lane, int k, uint8_t* sym,
                                                  uint8_t* low) {
#if defined(__SSE2__)
  const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(lane));
  const __m128i hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(lane + 8));
  // Bit b of each lane shifted to its sign, the 16 lanes packed to bytes with their signs kept,
  // and the bytes' signs gathered: one word in four instructions.
  for (int b = 0; b < k; ++b) {
    const __m128i count = _mm_cvtsi32_si128(15 - b);
    const __m128i bytes = _mm_packs_epi16(_mm_sll_epi16(lo, count), _mm_sll_epi16(hi, count));
    Store16(low + 2 * static_cast<size_t>(b), static_cast<uint16_t>(_mm_movemask_epi8(bytes)));
  }
  // min(u, 63) = u - max(u - 63, 0), in unsigned saturating arithmetic (SSE2 has no unsigned
  // 16-bit min); then at most 63, so the signed pack keeps it.
  const __m128i count = _mm_cvtsi32_si128(k);
  const __m128i limit = _mm_set1_epi16(kEscape);
  const __m128i ulo = _mm_srl_epi16(lo, count), uhi = _mm_srl_epi16(hi, count);
  const __m128i s = _mm_packs_epi16(_mm_sub_epi16(ulo, _mm_subs_epu16(ulo, limit)),
                                    _mm_sub_epi16(uhi, _mm_subs_epu16(uhi, limit)));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(sym), s);
  return static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(s, _mm_set1_epi8(kEscape))));
#else
  uint32_t escapes = 0;
  for (int b = 0; b < k; ++b) {
    uint16_t w = 0;
    for (size_t j = 0; j < kSlice; ++j) w |= static_cast<uint16_t>(((lane[j] >> b) & 1u) << j);
    Store16(low + 2 * static_cast<size_t>(b), w);
  }
  for (size_t j = 0; j < kSlice; ++j) {
    const uint32_t u = uint32_t{lane[j]} >> k;
    sym[j] = static_cast<uint8_t>(u < kEscape ? u : kEscape);
    escapes |= static_cast<uint32_t>(u >= kEscape) << j;
  }
  return escapes;
#endif
}

// Split (qhuff_split.h) from block `first` on.
template <typename T>
[[gnu::always_inline]] inline void SplitFrom(const T* v, size_t n, int k, size_t first,
                                             uint8_t* sym, uint8_t* low, std::vector<T>* escapes) {
  const size_t whole = n / kSlice, row = static_cast<size_t>(k) * 2;
  uint16_t lane[kSlice];
  for (size_t g = first; g < whole; ++g) {
    const T* block = v + g * kSlice;
    uint32_t esc;
    if constexpr (sizeof(T) == 2) {
      esc = SplitBlock(block, k, sym + g * kSlice, low + g * row);  // straight from the values
    } else {
      std::copy(block, block + kSlice, lane);
      esc = SplitBlock(lane, k, sym + g * kSlice, low + g * row);
    }
    for (; esc; esc &= esc - 1) escapes->push_back(block[__builtin_ctz(esc)]);
  }
  if (const size_t m = n - whole * kSlice; m > 0) {
    uint8_t last[kSlice];
    std::fill(lane, lane + kSlice, 0);
    std::copy(v + whole * kSlice, v + n, lane);
    uint32_t esc = SplitBlock(lane, k, last, low + whole * row);  // zero padding: no escapes
    std::copy(last, last + m, sym + whole * kSlice);
    for (; esc; esc &= esc - 1) escapes->push_back(lane[__builtin_ctz(esc)]);
  }
}

// Unslicing in GCC/Clang vector types of 16 lanes: one AVX2 register in the AVX2 clone, two SSE2
// or NEON registers otherwise, and the 16 lanes stay in registers from the symbols' load to the
// values' store (plain arrays went through memory, stalling on store forwarding).
// These helpers are always inlined into one translation unit, so no vector crosses a call: the
// warning that a 32-byte vector's ABI differs with and without AVX does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"
using U16x16 = uint16_t __attribute__((vector_size(32)));
using I16x16 = int16_t __attribute__((vector_size(32)));
using U8x16 = uint8_t __attribute__((vector_size(16)));

// All 16 lanes set to v, lane by lane: `vector op scalar` would widen the scalar to int first,
// and GCC refuses that as a truncation wherever it cannot prove the value fits (UBSan builds).
[[gnu::always_inline]] inline U16x16 Splat(uint16_t v) {
  U16x16 r;
  for (size_t j = 0; j < kSlice; ++j) r[j] = v;
  return r;
}

// Block g of Unslice: 16 values from 16 symbols at sym and their k words at w, into *acc (a
// pointer, not a returned vector, whose ABI would depend on the clone's ISA). Lane j's
// multiplier 2^(15 - j) puts bit j of a word at the top of lane j; an arithmetic shift spreads
// it over the lane, and bit b of it is kept.
[[gnu::always_inline]] inline void UnsliceBlock(const uint8_t* sym, const uint8_t* w, int k,
                                                U16x16* acc) {
  constexpr U16x16 kToTop = {0x8000, 0x4000, 0x2000, 0x1000, 0x800, 0x400, 0x200, 0x100,
                             0x80,   0x40,   0x20,   0x10,   0x8,   0x4,   0x2,   0x1};
  U8x16 s;
  std::memcpy(&s, sym, sizeof s);
  U16x16 v = __builtin_convertvector(s, U16x16) * Splat(static_cast<uint16_t>(1u << k));
  for (int b = 0; b < k; ++b) {
    const U16x16 word = Splat(Load16(w + 2 * static_cast<size_t>(b)));
    const I16x16 top = reinterpret_cast<I16x16>(word * kToTop) >> 15;
    v |= reinterpret_cast<U16x16>(top) & Splat(static_cast<uint16_t>(1u << b));
  }
  *acc = v;
}

inline void StoreBlock(const U16x16& v, size_t m, uint16_t* out) {
  if (m == kSlice) {
    std::memcpy(out, &v, sizeof v);
  } else {
    uint16_t lanes[kSlice];
    std::memcpy(lanes, &v, sizeof v);
    std::copy(lanes, lanes + m, out);
  }
}
inline void StoreBlock(const U16x16& v, size_t m, uint8_t* out) {
  const U8x16 narrow = __builtin_convertvector(v, U8x16);
  uint8_t lanes[kSlice];
  std::memcpy(lanes, &narrow, sizeof narrow);
  std::copy(lanes, lanes + m, out);
}

// Unslice (qhuff_split.h) from block `first` on.
template <typename T>
[[gnu::always_inline]] inline void UnsliceFrom(const uint8_t* sym, const uint8_t* low, size_t n,
                                               int k, size_t first, T* out) {
  const size_t whole = n / kSlice, row = static_cast<size_t>(k) * 2;
  U16x16 acc;
  for (size_t g = first; g < whole; ++g) {
    UnsliceBlock(sym + g * kSlice, low + g * row, k, &acc);
    StoreBlock(acc, kSlice, out + g * kSlice);
  }
  if (const size_t m = n - whole * kSlice; m > 0) {
    uint8_t last[kSlice] = {};
    std::copy(sym + whole * kSlice, sym + n, last);
    UnsliceBlock(last, low + whole * row, k, &acc);
    StoreBlock(acc, m, out + whole * kSlice);
  }
}

KV_VECTOR_CLONES void SplitPortableFrom(const uint8_t* v, size_t n, int k, size_t first,
                                        uint8_t* sym, uint8_t* low, std::vector<uint8_t>* escapes) {
  SplitFrom(v, n, k, first, sym, low, escapes);
}
KV_VECTOR_CLONES void SplitPortableFrom(const uint16_t* v, size_t n, int k, size_t first,
                                        uint8_t* sym, uint8_t* low,
                                        std::vector<uint16_t>* escapes) {
  SplitFrom(v, n, k, first, sym, low, escapes);
}
KV_VECTOR_CLONES void UnslicePortableFrom(const uint8_t* sym, const uint8_t* low, size_t n, int k,
                                          size_t first, uint8_t* out) {
  UnsliceFrom(sym, low, n, k, first, out);
}
KV_VECTOR_CLONES void UnslicePortableFrom(const uint8_t* sym, const uint8_t* low, size_t n, int k,
                                          size_t first, uint16_t* out) {
  UnsliceFrom(sym, low, n, k, first, out);
}

#if defined(__x86_64__)
// AVX-512BW: two blocks (32 values) per register. A bit-test mask is a whole low-bits word for
// each of the two blocks, and a masked add puts one back, where the portable path takes four
// and five vector operations per word (measured: Split and Unslice were 16% of bounded's
// compress and 20% of its decompress on Llama-shaped FP16, on AVX2 + SSE2). Returns the blocks
// done, always even; the portable path finishes from there.
#define KV_AVX512BW __attribute__((target("avx512f,avx512bw")))

KV_AVX512BW size_t SplitAvx512(const uint16_t* v, size_t n, int k, uint8_t* sym, uint8_t* low,
                               std::vector<uint16_t>* escapes) {
  const size_t pairs = n / (2 * kSlice), row = static_cast<size_t>(k) * 2;
  const __m128i count = _mm_cvtsi32_si128(k);
  const __m512i limit = _mm512_set1_epi16(kEscape);
  for (size_t g = 0; g < pairs; ++g) {
    const uint16_t* block = v + g * 2 * kSlice;
    const __m512i x = _mm512_loadu_si512(block);
    uint8_t* w = low + 2 * g * row;
    __m512i bit = _mm512_set1_epi16(1);
    for (int b = 0; b < k; ++b, bit = _mm512_add_epi16(bit, bit)) {
      const uint32_t word = _cvtmask32_u32(_mm512_test_epi16_mask(x, bit));
      Store16(w + 2 * static_cast<size_t>(b), static_cast<uint16_t>(word));
      Store16(w + row + 2 * static_cast<size_t>(b), static_cast<uint16_t>(word >> 16));
    }
    const __m512i u = _mm512_min_epu16(_mm512_srl_epi16(x, count), limit);
    // maskz, all lanes: the plain form's undefined source trips GCC 12's -Wmaybe-uninitialized.
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(sym + g * 2 * kSlice),
                        _mm512_maskz_cvtepi16_epi8(~__mmask32{0}, u));
    for (uint32_t esc = _cvtmask32_u32(_mm512_cmpeq_epi16_mask(u, limit)); esc; esc &= esc - 1) {
      escapes->push_back(block[__builtin_ctz(esc)]);
    }
  }
  return 2 * pairs;
}

KV_AVX512BW size_t UnsliceAvx512(const uint8_t* sym, const uint8_t* low, size_t n, int k,
                                 uint16_t* out) {
  const size_t pairs = n / (2 * kSlice), row = static_cast<size_t>(k) * 2;
  const __m128i count = _mm_cvtsi32_si128(k);
  for (size_t g = 0; g < pairs; ++g) {
    const __m256i s = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sym + g * 2 * kSlice));
    __m512i x = _mm512_sll_epi16(_mm512_cvtepu8_epi16(s), count);
    const uint8_t* w = low + 2 * g * row;
    __m512i bit = _mm512_set1_epi16(1);
    for (int b = 0; b < k; ++b, bit = _mm512_add_epi16(bit, bit)) {
      const uint32_t word = Load16(w + 2 * static_cast<size_t>(b)) |
                            uint32_t{Load16(w + row + 2 * static_cast<size_t>(b))} << 16;
      x = _mm512_mask_add_epi16(x, _cvtu32_mask32(word), x, bit);  // bit b of x is still 0
    }
    _mm512_storeu_si512(out + g * 2 * kSlice, x);
  }
  return 2 * pairs;
}

bool HasAvx512bw() {
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
  return has;
}
#endif

}  // namespace

void Split(const uint16_t* v, size_t n, int k, uint8_t* sym, uint8_t* low,
           std::vector<uint16_t>* escapes) {
  size_t done = 0;
#if defined(__x86_64__)
  if (HasAvx512bw()) done = SplitAvx512(v, n, k, sym, low, escapes);
#endif
  SplitPortableFrom(v, n, k, done, sym, low, escapes);
}

void Split(const uint8_t* v, size_t n, int k, uint8_t* sym, uint8_t* low,
           std::vector<uint8_t>* escapes) {
  SplitPortableFrom(v, n, k, 0, sym, low, escapes);
}

void Unslice(const uint8_t* sym, const uint8_t* low, size_t n, int k, uint16_t* out) {
  size_t done = 0;
#if defined(__x86_64__)
  if (HasAvx512bw()) done = UnsliceAvx512(sym, low, n, k, out);
#endif
  UnslicePortableFrom(sym, low, n, k, done, out);
}

void Unslice(const uint8_t* sym, const uint8_t* low, size_t n, int k, uint8_t* out) {
  UnslicePortableFrom(sym, low, n, k, 0, out);
}

void SplitPortable(const uint16_t* v, size_t n, int k, uint8_t* sym, uint8_t* low,
                   std::vector<uint16_t>* escapes) {
  SplitPortableFrom(v, n, k, 0, sym, low, escapes);
}

void UnslicePortable(const uint8_t* sym, const uint8_t* low, size_t n, int k, uint16_t* out) {
  UnslicePortableFrom(sym, low, n, k, 0, out);
}

const char* SplitPath() {
#if defined(__x86_64__)
  if (HasAvx512bw()) return "avx512bw";
#endif
  return "portable";
}

}  // namespace kvcomp::qhuff

#include "core/kvcomp/stages/uquant_16bit.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/kvcomp/internal/dtype_simd.h"

#if defined(__x86_64__)
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*(), which -Wmaybe-uninitialized
// then flags wherever they are inlined (GCC bug 105593, fixed in GCC 13).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#endif

namespace kvcomp::uquant_internal {

#if defined(__x86_64__)
namespace {

#define KV_AVX2 __attribute__((target("avx2,f16c")))
#define KV_AVX512 __attribute__((target("avx512f,avx512bw,avx2,f16c")))

// The two 16-bit float formats, as the kernels widen, round and narrow them: FP16 with F16C,
// BF16 as the top half of an FP32 (widening is a shift; rounding to nearest even adds 0x7fff
// plus the kept half's lowest bit, FloatToBf16Bits's arithmetic for finite values, and every value
// rounded here is finite). Each operation gives the general path's bits.
struct Half {
  static constexpr uint16_t kExponent = 0x7c00;
  static KV_AVX2 __m256 Widen(__m128i h) { return _mm256_cvtph_ps(h); }
  static KV_AVX2 __m128i Narrow(__m256 y) {
    return _mm256_cvtps_ph(y, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  static KV_AVX2 __m256 Round(__m256 y) { return Widen(Narrow(y)); }
  static KV_AVX512 __m512 Widen(__m256i h) { return _mm512_cvtph_ps(h); }
  static KV_AVX512 __m256i Narrow(__m512 y) {
    return _mm512_cvtps_ph(y, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  static KV_AVX512 __m512 Round(__m512 y) { return Widen(Narrow(y)); }
};

struct Bf16 {
  static constexpr uint16_t kExponent = 0x7f80;
  static KV_AVX2 __m256 Widen(__m128i h) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
  // The rounded FP32 bits, low half zero.
  static KV_AVX2 __m256i Rounded(__m256 y) {
    const __m256i b = _mm256_castps_si256(y);
    const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(b, 16), _mm256_set1_epi32(1));
    return _mm256_andnot_si256(
        _mm256_set1_epi32(0xffff),
        _mm256_add_epi32(_mm256_add_epi32(b, _mm256_set1_epi32(0x7fff)), odd));
  }
  static KV_AVX2 __m128i Narrow(__m256 y) {
    const __m256i top = _mm256_srli_epi32(Rounded(y), 16);
    return _mm_packus_epi32(_mm256_castsi256_si128(top), _mm256_extracti128_si256(top, 1));
  }
  static KV_AVX2 __m256 Round(__m256 y) { return _mm256_castsi256_ps(Rounded(y)); }
  static KV_AVX512 __m512 Widen(__m256i h) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
  static KV_AVX512 __m512i Rounded(__m512 y) {
    const __m512i b = _mm512_castps_si512(y);
    const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(1));
    return _mm512_andnot_si512(
        _mm512_set1_epi32(0xffff),
        _mm512_add_epi32(_mm512_add_epi32(b, _mm512_set1_epi32(0x7fff)), odd));
  }
  static KV_AVX512 __m256i Narrow(__m512 y) {
    return _mm512_cvtepi32_epi16(_mm512_srli_epi32(Rounded(y), 16));
  }
  static KV_AVX512 __m512 Round(__m512 y) { return _mm512_castsi512_ps(Rounded(y)); }
};

// The running sums of one chunk, a lane per register lane, as AddErrorSums<float, 8> keeps them.
struct Lanes {
  __m256 abs_err, sq_err, abs_x, xx, dyy, peak;
};

// Lanes of 8 values whose exponent is all ones (infinity or NaN).
template <typename F>
KV_AVX2 inline __m128i NonFinite(__m128i h) {
  const __m128i exponent = _mm_set1_epi16(static_cast<int16_t>(F::kExponent));
  return _mm_cmpeq_epi16(_mm_and_si128(h, exponent), exponent);
}

// 8 values: x (finite, widened exactly) to codes, stored at dst, and their error added to
// `l`. Every operation is QuantizeChunk's, Dequantize's, RoundThrough's and AddErrorSums's, in
// their order and without contraction, so codes and sums are theirs to the bit.
template <typename F>
KV_AVX2 inline void Block(__m128i h, float inv, float s, float overflow, uint8_t* dst, Lanes* l,
                          __m256i* max_code) {
  const __m256 x = F::Widen(h);
  const __m256 magic = _mm256_set1_ps(12582912.0f);  // RoundEven's
  __m256 v = _mm256_mul_ps(x, _mm256_set1_ps(inv));
  v = _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(-4e6f)), _mm256_set1_ps(4e6f));
  __m256i q = _mm256_cvttps_epi32(_mm256_sub_ps(_mm256_add_ps(v, magic), magic));
  const __m256 step = _mm256_set1_ps(s);
  const __m256 sign_mask = _mm256_set1_ps(-0.0f);
  if (overflow != INFINITY) {  // uquant's toward-zero move, where a code can reach the limit
    const __m256 value = _mm256_andnot_ps(sign_mask, _mm256_mul_ps(_mm256_cvtepi32_ps(q), step));
    const __m256i over =
        _mm256_castps_si256(_mm256_cmp_ps(value, _mm256_set1_ps(overflow), _CMP_GE_OQ));
    q = _mm256_sub_epi32(q, _mm256_and_si256(over, _mm256_sign_epi32(_mm256_set1_epi32(1), q)));
  }
  *max_code = _mm256_max_epi32(*max_code, _mm256_abs_epi32(q));
  // Zigzag; codes in range fit 16 bits, so the saturating pack keeps them.
  const __m256i z = _mm256_xor_si256(_mm256_slli_epi32(q, 1), _mm256_srai_epi32(q, 31));
  const __m128i packed =
      _mm_packus_epi32(_mm256_castsi256_si128(z), _mm256_extracti128_si256(z, 1));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), packed);
  // The decoder's value, rounded to the stream's format, and the sums.
  const __m256 y = F::Round(_mm256_mul_ps(_mm256_cvtepi32_ps(q), step));
  const __m256 d = _mm256_sub_ps(x, y);
  const __m256 ad = _mm256_andnot_ps(sign_mask, d);
  l->abs_err = _mm256_add_ps(l->abs_err, ad);
  l->sq_err = _mm256_add_ps(l->sq_err, _mm256_mul_ps(d, d));
  l->abs_x = _mm256_add_ps(l->abs_x, _mm256_andnot_ps(sign_mask, x));
  l->xx = _mm256_add_ps(l->xx, _mm256_mul_ps(x, x));
  l->dyy = _mm256_add_ps(l->dyy, _mm256_mul_ps(_mm256_sub_ps(y, x), _mm256_add_ps(y, x)));
  l->peak = _mm256_max_ps(ad, l->peak);  // ad > peak ? ad : peak
}

// The tail of a chunk, fewer than 8 values, zero-padded as AddErrorSums pads it (zeros add
// nothing); its non-finite check is folded into *bad.
template <typename F>
KV_AVX2 inline void Tail(const uint8_t* src, size_t count, float inv, float s, float overflow,
                         uint8_t* dst, Lanes* l, __m256i* max_code, __m128i* bad) {
  uint8_t tail[16] = {}, codes[16];
  std::memcpy(tail, src, 2 * count);
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(tail));
  *bad = _mm_or_si128(*bad, NonFinite<F>(h));
  Block<F>(h, inv, s, overflow, codes, l, max_code);
  std::memcpy(dst, codes, 2 * count);
}

// A chunk's lanes added to the sums (false: they need double precision).
KV_AVX2 inline bool AddChunk(const Lanes& l, ErrorSums* error) {
  ErrorLanes lanes;
  _mm256_storeu_ps(lanes.abs_err, l.abs_err);
  _mm256_storeu_ps(lanes.sq_err, l.sq_err);
  _mm256_storeu_ps(lanes.abs_x, l.abs_x);
  _mm256_storeu_ps(lanes.xx, l.xx);
  _mm256_storeu_ps(lanes.yy_minus_xx, l.dyy);
  _mm256_storeu_ps(lanes.max_abs, l.peak);
  return AddErrorLanes(lanes, error);
}

KV_AVX2 inline int64_t LargestCode(__m256i top) {
  int32_t lanes[8];
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(lanes), top);
  return *std::max_element(lanes, lanes + 8);
}

KV_AVX2 inline Lanes NoLanes() {
  Lanes l;
  l.abs_err = l.sq_err = l.abs_x = l.xx = l.dyy = l.peak = _mm256_setzero_ps();
  return l;
}

// Values [i, m) of a chunk (src and dst at its start) in 8-value blocks, then the tail.
template <typename F>
KV_AVX2 inline void Blocks8(const uint8_t* src, uint8_t* dst, size_t i, size_t m, float inv,
                            float s, float overflow, Lanes* l, __m256i* top, __m128i* bad) {
  for (; i + 8 <= m; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * i));
    *bad = _mm_or_si128(*bad, NonFinite<F>(h));
    Block<F>(h, inv, s, overflow, dst + 2 * i, l, top);
  }
  if (i < m) Tail<F>(src + 2 * i, m - i, inv, s, overflow, dst + 2 * i, l, top, bad);
}

// Chunks from `first` on (a multiple of kErrorChunk), 8 values a block; *top and *bad carry the
// largest |code| and the non-finite lanes so far. The AVX-512 path ends here too.
template <typename F>
KV_AVX2 inline bool ChunksFrom(size_t first, const uint8_t* src, size_t n, float inv, float s,
                               float overflow, uint8_t* dst, ErrorSums* error, __m256i* top,
                               __m128i* bad) {
  for (; first < n; first += kErrorChunk) {
    Lanes l = NoLanes();
    Blocks8<F>(src + 2 * first, dst + 2 * first, 0, std::min(kErrorChunk, n - first), inv, s,
               overflow, &l, top, bad);
    if (_mm_movemask_epi8(*bad)) return false;
    if (error && !AddChunk(l, error)) return false;
  }
  return true;
}

template <typename F>
KV_AVX2 bool QuantizeAvx2(const uint8_t* src, size_t n, float inv, float s, float overflow,
                          uint8_t* dst, ErrorSums* error, int64_t* max_code) {
  __m128i bad = _mm_setzero_si128();
  __m256i top = _mm256_setzero_si256();
  if (!ChunksFrom<F>(0, src, n, inv, s, overflow, dst, error, &top, &bad)) return false;
  *max_code = LargestCode(top);
  return true;
}

// AVX-512: two whole chunks at a time, a and b = a + kErrorChunk, 16 values a register: lanes
// 0-7 hold chunk a's values i .. i + 7 and lanes 8-15 chunk b's. So each lane adds, in order, what
// Block's lane adds for its own chunk, with Block's operations: the same codes and sums to the
// bit, for one 512-bit add per sum per 16 values. (16 consecutive values a register would need a
// split and a second add per sum to keep Block's 8-lane order; this loop is ~1.4x that one on
// Zen 5.) The rest, at most one chunk and a part, takes the AVX2 blocks. Measured on Llama-shaped
// FP16: the encoder takes ~2/3 of the AVX2 path's time on Intel, where 512-bit operations issue
// on two ports to 256-bit's three, and about half on Zen 5.
struct Lanes16 {
  __m512 abs_err, sq_err, abs_x, xx, dyy, peak;
};

template <typename F>
KV_AVX512 inline void Block16(__m256i h, float inv, float s, float overflow, uint8_t* dst_a,
                              uint8_t* dst_b, Lanes16* l, __m512i* max_code) {
  const __m512 x = F::Widen(h);
  const __m512 magic = _mm512_set1_ps(12582912.0f);
  __m512 v = _mm512_mul_ps(x, _mm512_set1_ps(inv));
  v = _mm512_min_ps(_mm512_max_ps(v, _mm512_set1_ps(-4e6f)), _mm512_set1_ps(4e6f));
  __m512i q = _mm512_cvttps_epi32(_mm512_sub_ps(_mm512_add_ps(v, magic), magic));
  const __m512 step = _mm512_set1_ps(s);
  if (overflow != INFINITY) {  // a step toward zero where |q s| reaches the limit
    const __m512 value = _mm512_abs_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(q), step));
    const __mmask16 over = _mm512_cmp_ps_mask(value, _mm512_set1_ps(overflow), _CMP_GE_OQ);
    const __m512i zero = _mm512_setzero_si512(), one = _mm512_set1_epi32(1);
    q = _mm512_mask_sub_epi32(q, over & _mm512_cmpgt_epi32_mask(q, zero), q, one);
    q = _mm512_mask_add_epi32(q, over & _mm512_cmplt_epi32_mask(q, zero), q, one);
  }
  *max_code = _mm512_max_epi32(*max_code, _mm512_abs_epi32(q));
  // Zigzag, then to 16 bits saturating as Block's pack does (codes in range fit).
  const __m512i z = _mm512_xor_si512(_mm512_slli_epi32(q, 1), _mm512_srai_epi32(q, 31));
  const __m256i codes = _mm512_cvtusepi32_epi16(z);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(dst_a), _mm256_castsi256_si128(codes));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(dst_b), _mm256_extracti128_si256(codes, 1));
  const __m512 y = F::Round(_mm512_mul_ps(_mm512_cvtepi32_ps(q), step));
  const __m512 d = _mm512_sub_ps(x, y);
  const __m512 ad = _mm512_abs_ps(d);
  l->abs_err = _mm512_add_ps(l->abs_err, ad);
  l->sq_err = _mm512_add_ps(l->sq_err, _mm512_mul_ps(d, d));
  l->abs_x = _mm512_add_ps(l->abs_x, _mm512_abs_ps(x));
  l->xx = _mm512_add_ps(l->xx, _mm512_mul_ps(x, x));
  l->dyy = _mm512_add_ps(l->dyy, _mm512_mul_ps(_mm512_sub_ps(y, x), _mm512_add_ps(y, x)));
  l->peak = _mm512_max_ps(ad, l->peak);
}

KV_AVX512 inline void SplitLanes(__m512 both, __m256* a, __m256* b) {
  *a = _mm512_castps512_ps256(both);
  *b = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(both), 1));
}

// The two chunks' lanes, as Block keeps them.
KV_AVX512 inline void SplitChunks(const Lanes16& w, Lanes* a, Lanes* b) {
  SplitLanes(w.abs_err, &a->abs_err, &b->abs_err);
  SplitLanes(w.sq_err, &a->sq_err, &b->sq_err);
  SplitLanes(w.abs_x, &a->abs_x, &b->abs_x);
  SplitLanes(w.xx, &a->xx, &b->xx);
  SplitLanes(w.dyy, &a->dyy, &b->dyy);
  SplitLanes(w.peak, &a->peak, &b->peak);
}

template <typename F>
KV_AVX512 bool QuantizeAvx512(const uint8_t* src, size_t n, float inv, float s, float overflow,
                              uint8_t* dst, ErrorSums* error, int64_t* max_code) {
  const __m256i exponent = _mm256_set1_epi16(static_cast<int16_t>(F::kExponent));
  __m256i wide_bad = _mm256_setzero_si256();
  __m512i wide_top = _mm512_setzero_si512();
  size_t first = 0;
  for (; first + 2 * kErrorChunk <= n; first += 2 * kErrorChunk) {
    const uint8_t* const in_a = src + 2 * first;
    const uint8_t* const in_b = in_a + 2 * kErrorChunk;
    uint8_t* const out_a = dst + 2 * first;
    uint8_t* const out_b = out_a + 2 * kErrorChunk;
    Lanes16 w;
    w.abs_err = w.sq_err = w.abs_x = w.xx = w.dyy = w.peak = _mm512_setzero_ps();
    for (size_t i = 0; i < kErrorChunk; i += 8) {
      const __m256i h = _mm256_inserti128_si256(
          _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in_a + 2 * i))),
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(in_b + 2 * i)), 1);
      wide_bad =
          _mm256_or_si256(wide_bad, _mm256_cmpeq_epi16(_mm256_and_si256(h, exponent), exponent));
      Block16<F>(h, inv, s, overflow, out_a + 2 * i, out_b + 2 * i, &w, &wide_top);
    }
    if (_mm256_movemask_epi8(wide_bad)) return false;
    Lanes a, b;
    SplitChunks(w, &a, &b);
    if (error && (!AddChunk(a, error) || !AddChunk(b, error))) return false;
  }
  __m128i bad = _mm_setzero_si128();
  __m256i top = _mm256_setzero_si256();
  if (!ChunksFrom<F>(first, src, n, inv, s, overflow, dst, error, &top, &bad)) return false;
  *max_code = std::max(LargestCode(top), static_cast<int64_t>(_mm512_reduce_max_epi32(wide_top)));
  return true;
}

// The decoder's values of 8 zigzag codes at src, code x s rounded to the format (to nearest), at
// dst: DecodeChunk's and NarrowChunk's operations in registers.
template <typename F>
KV_AVX2 inline void Dequantize8(const uint8_t* src, __m256 step, uint8_t* dst) {
  const __m256i z = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src)));
  const __m256i q = _mm256_xor_si256(
      _mm256_srli_epi32(z, 1),
      _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_and_si256(z, _mm256_set1_epi32(1))));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(dst),
                   F::Narrow(_mm256_mul_ps(_mm256_cvtepi32_ps(q), step)));
}

// Codes [i, n) in 8-value blocks, then the tail through a zero-padded copy.
template <typename F>
KV_AVX2 inline void DequantizeFrom(const uint8_t* src, size_t i, size_t n, float s, uint8_t* dst) {
  const __m256 step = _mm256_set1_ps(s);
  for (; i + 8 <= n; i += 8) Dequantize8<F>(src + 2 * i, step, dst + 2 * i);
  if (i == n) return;
  uint8_t codes[16] = {}, values[16];
  std::memcpy(codes, src + 2 * i, 2 * (n - i));
  Dequantize8<F>(codes, step, values);
  std::memcpy(dst + 2 * i, values, 2 * (n - i));
}

template <typename F>
KV_AVX2 void DequantizeAvx2(const uint8_t* src, size_t n, float s, uint8_t* dst) {
  DequantizeFrom<F>(src, 0, n, s, dst);
}

template <typename F>
KV_AVX512 void DequantizeAvx512(const uint8_t* src, size_t n, float s, uint8_t* dst) {
  const __m512 step = _mm512_set1_ps(s);
  const __m512i one = _mm512_set1_epi32(1);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512i z =
        _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 2 * i)));
    const __m512i q =
        _mm512_xor_si512(_mm512_srli_epi32(z, 1),
                         _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_and_si512(z, one)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 2 * i),
                        F::Narrow(_mm512_mul_ps(_mm512_cvtepi32_ps(q), step)));
  }
  DequantizeFrom<F>(src, i, n, s, dst);
}

}  // namespace
#endif

Path16 BestPath16() {
#if defined(__x86_64__)
  static const Path16 best = [] {
    if (std::strcmp(dtype_internal::HalfSimdPath(), "f16c") != 0 ||
        !__builtin_cpu_supports("avx2")) {
      return Path16::kNone;
    }
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") ? Path16::kAvx512
                                                                                   : Path16::kAvx2;
  }();
  return best;
#else
  return Path16::kNone;
#endif
}

bool HasOnePassPath() { return BestPath16() != Path16::kNone; }

bool Quantize16On(Path16 path, Format16 format, const uint8_t* src, size_t n, float inv, float s,
                  float overflow, uint8_t* dst, ErrorSums* error, int64_t* max_code) {
  if (path == Path16::kNone || path > BestPath16()) return false;
#if defined(__x86_64__)
  const bool bf16 = format == Format16::kBF16;
  if (path == Path16::kAvx512) {
    return bf16 ? QuantizeAvx512<Bf16>(src, n, inv, s, overflow, dst, error, max_code)
                : QuantizeAvx512<Half>(src, n, inv, s, overflow, dst, error, max_code);
  }
  return bf16 ? QuantizeAvx2<Bf16>(src, n, inv, s, overflow, dst, error, max_code)
              : QuantizeAvx2<Half>(src, n, inv, s, overflow, dst, error, max_code);
#else
  (void)format, (void)src, (void)n, (void)inv, (void)s, (void)overflow, (void)dst, (void)error,
      (void)max_code;
  return false;
#endif
}

bool Quantize16(Format16 format, const uint8_t* src, size_t n, float inv, float s, float overflow,
                uint8_t* dst, ErrorSums* error, int64_t* max_code) {
  return Quantize16On(BestPath16(), format, src, n, inv, s, overflow, dst, error, max_code);
}

bool Format16Of(DType dtype, Format16* format) {
  if (dtype == DType::kFP32) return false;
  *format = dtype == DType::kFP16 ? Format16::kFP16 : Format16::kBF16;
  return true;
}

float OverflowAt(Format16 format, double step) {
  float limit = 65520.0f;
  if (format == Format16::kBF16) {
    const uint32_t bits = 0x7f7f8000;  // BF16's largest finite value and a half unit above it
    std::memcpy(&limit, &bits, 4);
  }
  return 32768.0 * step >= limit ? limit : INFINITY;
}

bool Simulate16(Format16 format, const uint8_t* src, size_t n, double step, ErrorSums* error) {
  // UniformQuantStage's parameters.
  const float inv = static_cast<float>(1.0 / step), s = static_cast<float>(step);
  const float overflow = OverflowAt(format, step);
  // Two chunks at a time (QuantizeAvx512 pairs them): the same sums, and no codes kept.
  constexpr size_t kSpan = 2 * kErrorChunk;
  uint8_t codes[2 * kSpan];
  for (size_t first = 0; first < n; first += kSpan) {
    const size_t m = std::min(kSpan, n - first);
    int64_t max_code;
    if (!Quantize16(format, src + 2 * first, m, inv, s, overflow, codes, error, &max_code)) {
      return false;
    }
  }
  error->count = n;
  return true;
}

bool Dequantize16On(Path16 path, Format16 format, const uint8_t* src, size_t n, float s,
                    uint8_t* dst) {
  if (path == Path16::kNone || path > BestPath16()) return false;
#if defined(__x86_64__)
  const bool bf16 = format == Format16::kBF16;
  if (path == Path16::kAvx512) {
    bf16 ? DequantizeAvx512<Bf16>(src, n, s, dst) : DequantizeAvx512<Half>(src, n, s, dst);
  } else {
    bf16 ? DequantizeAvx2<Bf16>(src, n, s, dst) : DequantizeAvx2<Half>(src, n, s, dst);
  }
  return true;
#else
  (void)format, (void)src, (void)n, (void)s, (void)dst;
  return false;
#endif
}

bool Dequantize16(Format16 format, const uint8_t* src, size_t n, float s, uint8_t* dst) {
  return Dequantize16On(BestPath16(), format, src, n, s, dst);
}

}  // namespace kvcomp::uquant_internal

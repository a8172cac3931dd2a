#include "kvcomp/stages/uquant_fp16.h"

#include <algorithm>
#include <cstring>

#include "kvcomp/dtype_simd.h"

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

// The running sums of one chunk, a lane per register lane, as AddErrorSums<float, 8> keeps them.
struct Lanes {
  __m256 abs_err, sq_err, abs_x, xx, dyy, peak;
};

// Lanes of 8 FP16 values whose exponent is all ones (infinity or NaN).
__attribute__((target("avx2,f16c"))) inline __m128i NonFinite(__m128i h) {
  const __m128i exponent = _mm_set1_epi16(0x7c00);
  return _mm_cmpeq_epi16(_mm_and_si128(h, exponent), exponent);
}

// 8 values: x (finite FP16, widened exactly) to codes, stored at dst, and their error added to
// `l`. Every operation is QuantizeChunk's, Dequantize's, RoundThrough's and AddErrorSums's, in
// their order and without contraction, so codes and sums are theirs to the bit.
__attribute__((target("avx2,f16c"))) inline void Block(__m128i h, float inv, float s,
                                                       float overflow, uint8_t* dst, Lanes* l,
                                                       __m256i* max_code) {
  const __m256 x = _mm256_cvtph_ps(h);
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
  // The decoder's value, rounded to FP16, and the sums.
  const __m256 y = _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_mul_ps(_mm256_cvtepi32_ps(q), step),
                                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
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
__attribute__((target("avx2,f16c"))) inline void Tail(const uint8_t* src, size_t count, float inv,
                                                      float s, float overflow, uint8_t* dst,
                                                      Lanes* l, __m256i* max_code, __m128i* bad) {
  uint8_t tail[16] = {}, codes[16];
  std::memcpy(tail, src, 2 * count);
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(tail));
  *bad = _mm_or_si128(*bad, NonFinite(h));
  Block(h, inv, s, overflow, codes, l, max_code);
  std::memcpy(dst, codes, 2 * count);
}

// A chunk's lanes added to the sums (false: they need double precision).
__attribute__((target("avx2,f16c"))) inline bool AddChunk(const Lanes& l, ErrorSums* error) {
  ErrorLanes lanes;
  _mm256_storeu_ps(lanes.abs_err, l.abs_err);
  _mm256_storeu_ps(lanes.sq_err, l.sq_err);
  _mm256_storeu_ps(lanes.abs_x, l.abs_x);
  _mm256_storeu_ps(lanes.xx, l.xx);
  _mm256_storeu_ps(lanes.yy_minus_xx, l.dyy);
  _mm256_storeu_ps(lanes.max_abs, l.peak);
  return AddErrorLanes(lanes, error);
}

__attribute__((target("avx2,f16c"))) inline int64_t LargestCode(__m256i top) {
  int32_t lanes[8];
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(lanes), top);
  return *std::max_element(lanes, lanes + 8);
}

__attribute__((target("avx2,f16c"))) inline Lanes NoLanes() {
  Lanes l;
  l.abs_err = l.sq_err = l.abs_x = l.xx = l.dyy = l.peak = _mm256_setzero_ps();
  return l;
}

// Values [i, m) of a chunk (src and dst at its start) in 8-value blocks, then the tail.
__attribute__((target("avx2,f16c"))) inline void Blocks8(const uint8_t* src, uint8_t* dst, size_t i,
                                                         size_t m, float inv, float s,
                                                         float overflow, Lanes* l, __m256i* top,
                                                         __m128i* bad) {
  for (; i + 8 <= m; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * i));
    *bad = _mm_or_si128(*bad, NonFinite(h));
    Block(h, inv, s, overflow, dst + 2 * i, l, top);
  }
  if (i < m) Tail(src + 2 * i, m - i, inv, s, overflow, dst + 2 * i, l, top, bad);
}

__attribute__((target("avx2,f16c"))) bool QuantizeHalfAvx2(const uint8_t* src, size_t n, float inv,
                                                           float s, float overflow, uint8_t* dst,
                                                           ErrorSums* error, int64_t* max_code) {
  __m128i bad = _mm_setzero_si128();
  __m256i top = _mm256_setzero_si256();
  for (size_t first = 0; first < n; first += kErrorChunk) {
    Lanes l = NoLanes();
    Blocks8(src + 2 * first, dst + 2 * first, 0, std::min(kErrorChunk, n - first), inv, s, overflow,
            &l, &top, &bad);
    if (_mm_movemask_epi8(bad)) return false;
    if (error && !AddChunk(l, error)) return false;
  }
  *max_code = LargestCode(top);
  return true;
}

// AVX-512: 16 values a register, the same operations as Block's. The sums stay in Block's 8
// lanes, each added the lower 8 values' terms and then the upper 8's, so every lane adds what
// it adds in Block and in the same order: the same sums to the bit. Measured on Llama-shaped
// FP16 (Intel, where 512-bit operations issue on two ports to 256-bit's three): the encoder
// takes ~2/3 of Block's time.
#define KV_AVX512 __attribute__((target("avx512f,avx512bw,avx2,f16c")))

KV_AVX512 inline void Add(__m256* acc, __m512 t) {
  *acc = _mm256_add_ps(*acc, _mm512_castps512_ps256(t));
  *acc = _mm256_add_ps(*acc, _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(t), 1)));
}

KV_AVX512 inline void Block16(__m256i h, float inv, float s, float overflow, uint8_t* dst, Lanes* l,
                              __m512* peak, __m512i* max_code) {
  const __m512 x = _mm512_cvtph_ps(h);
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
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), _mm512_cvtusepi32_epi16(z));
  const __m512 y = _mm512_cvtph_ps(_mm512_cvtps_ph(_mm512_mul_ps(_mm512_cvtepi32_ps(q), step),
                                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  const __m512 d = _mm512_sub_ps(x, y);
  const __m512 ad = _mm512_abs_ps(d);
  Add(&l->abs_err, ad);
  Add(&l->sq_err, _mm512_mul_ps(d, d));
  Add(&l->abs_x, _mm512_abs_ps(x));
  Add(&l->xx, _mm512_mul_ps(x, x));
  Add(&l->dyy, _mm512_mul_ps(_mm512_sub_ps(y, x), _mm512_add_ps(y, x)));
  *peak = _mm512_max_ps(ad, *peak);  // a max is exact: lanes j and j + 8 fold into Block's j
}

KV_AVX512 bool QuantizeHalfAvx512(const uint8_t* src, size_t n, float inv, float s, float overflow,
                                  uint8_t* dst, ErrorSums* error, int64_t* max_code) {
  const __m256i exponent = _mm256_set1_epi16(0x7c00);
  __m256i wide_bad = _mm256_setzero_si256();
  __m128i bad = _mm_setzero_si128();
  __m512i wide_top = _mm512_setzero_si512();
  __m256i top = _mm256_setzero_si256();
  for (size_t first = 0; first < n; first += kErrorChunk) {
    const size_t m = std::min(kErrorChunk, n - first);
    const uint8_t* const in = src + 2 * first;
    uint8_t* const out = dst + 2 * first;
    Lanes l = NoLanes();
    __m512 peak = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= m; i += 16) {
      const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + 2 * i));
      wide_bad =
          _mm256_or_si256(wide_bad, _mm256_cmpeq_epi16(_mm256_and_si256(h, exponent), exponent));
      Block16(h, inv, s, overflow, out + 2 * i, &l, &peak, &wide_top);
    }
    l.peak = _mm256_max_ps(_mm512_castps512_ps256(peak),
                           _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(peak), 1)));
    Blocks8(in, out, i, m, inv, s, overflow, &l, &top, &bad);
    if (_mm_movemask_epi8(bad) | _mm256_movemask_epi8(wide_bad)) return false;
    if (error && !AddChunk(l, error)) return false;
  }
  *max_code = std::max(LargestCode(top), static_cast<int64_t>(_mm512_reduce_max_epi32(wide_top)));
  return true;
}

// The decoder's values of 8 zigzag codes at src, code x s rounded to FP16 (to nearest), at dst:
// DecodeChunk's and NarrowChunk's operations in registers.
__attribute__((target("avx2,f16c"))) inline void Dequantize8(const uint8_t* src, __m256 step,
                                                             uint8_t* dst) {
  const __m256i z = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src)));
  const __m256i q = _mm256_xor_si256(
      _mm256_srli_epi32(z, 1),
      _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_and_si256(z, _mm256_set1_epi32(1))));
  const __m128i h = _mm256_cvtps_ph(_mm256_mul_ps(_mm256_cvtepi32_ps(q), step),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), h);
}

// Codes [i, n) in 8-value blocks, then the tail through a zero-padded copy.
__attribute__((target("avx2,f16c"))) inline void DequantizeFrom(const uint8_t* src, size_t i,
                                                                size_t n, float s, uint8_t* dst) {
  const __m256 step = _mm256_set1_ps(s);
  for (; i + 8 <= n; i += 8) Dequantize8(src + 2 * i, step, dst + 2 * i);
  if (i == n) return;
  uint8_t codes[16] = {}, halves[16];
  std::memcpy(codes, src + 2 * i, 2 * (n - i));
  Dequantize8(codes, step, halves);
  std::memcpy(dst + 2 * i, halves, 2 * (n - i));
}

__attribute__((target("avx2,f16c"))) void DequantizeHalfAvx2(const uint8_t* src, size_t n, float s,
                                                             uint8_t* dst) {
  DequantizeFrom(src, 0, n, s, dst);
}

KV_AVX512 void DequantizeHalfAvx512(const uint8_t* src, size_t n, float s, uint8_t* dst) {
  const __m512 step = _mm512_set1_ps(s);
  const __m512i one = _mm512_set1_epi32(1);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512i z =
        _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 2 * i)));
    const __m512i q =
        _mm512_xor_si512(_mm512_srli_epi32(z, 1),
                         _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_and_si512(z, one)));
    const __m256i h = _mm512_cvtps_ph(_mm512_mul_ps(_mm512_cvtepi32_ps(q), step),
                                      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 2 * i), h);
  }
  DequantizeFrom(src, i, n, s, dst);
}

}  // namespace
#endif

HalfPath BestHalfPath() {
#if defined(__x86_64__)
  static const HalfPath best = [] {
    if (std::strcmp(dtype_internal::HalfSimdPath(), "f16c") != 0 ||
        !__builtin_cpu_supports("avx2")) {
      return HalfPath::kNone;
    }
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
               ? HalfPath::kAvx512
               : HalfPath::kAvx2;
  }();
  return best;
#else
  return HalfPath::kNone;
#endif
}

bool HasOnePassPath() { return BestHalfPath() != HalfPath::kNone; }

bool QuantizeHalfOn(HalfPath path, const uint8_t* src, size_t n, float inv, float s, float overflow,
                    uint8_t* dst, ErrorSums* error, int64_t* max_code) {
  if (path == HalfPath::kNone || path > BestHalfPath()) return false;
#if defined(__x86_64__)
  if (path == HalfPath::kAvx512) {
    return QuantizeHalfAvx512(src, n, inv, s, overflow, dst, error, max_code);
  }
  return QuantizeHalfAvx2(src, n, inv, s, overflow, dst, error, max_code);
#else
  (void)src, (void)n, (void)inv, (void)s, (void)overflow, (void)dst, (void)error, (void)max_code;
  return false;
#endif
}

bool QuantizeHalf(const uint8_t* src, size_t n, float inv, float s, float overflow, uint8_t* dst,
                  ErrorSums* error, int64_t* max_code) {
  return QuantizeHalfOn(BestHalfPath(), src, n, inv, s, overflow, dst, error, max_code);
}

bool DequantizeHalfOn(HalfPath path, const uint8_t* src, size_t n, float s, uint8_t* dst) {
  if (path == HalfPath::kNone || path > BestHalfPath()) return false;
#if defined(__x86_64__)
  if (path == HalfPath::kAvx512) {
    DequantizeHalfAvx512(src, n, s, dst);
  } else {
    DequantizeHalfAvx2(src, n, s, dst);
  }
  return true;
#else
  (void)src, (void)n, (void)s, (void)dst;
  return false;
#endif
}

bool DequantizeHalf(const uint8_t* src, size_t n, float s, uint8_t* dst) {
  return DequantizeHalfOn(BestHalfPath(), src, n, s, dst);
}

}  // namespace kvcomp::uquant_internal

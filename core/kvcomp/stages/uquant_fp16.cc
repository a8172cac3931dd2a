#include "kvcomp/stages/uquant_fp16.h"

#include <algorithm>
#include <cstring>

#include "kvcomp/dtype_simd.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace kvcomp::uquant_internal {

#if defined(__x86_64__)
namespace {

// The running sums of one chunk, a lane per register lane, as AddErrorSums<float, 8> keeps them.
struct Lanes {
  __m256 abs_err, sq_err, abs_x, xx, dyy, peak;
};

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

__attribute__((target("avx2,f16c"))) bool QuantizeHalfAvx2(const uint8_t* src, size_t n, float inv,
                                                           float s, float overflow, uint8_t* dst,
                                                           ErrorSums* error, int64_t* max_code) {
  const __m128i exponent = _mm_set1_epi16(0x7c00);
  __m128i bad = _mm_setzero_si128();
  __m256i top = _mm256_setzero_si256();
  for (size_t first = 0; first < n; first += kErrorChunk) {
    const size_t m = std::min(kErrorChunk, n - first);
    Lanes l;
    l.abs_err = l.sq_err = l.abs_x = l.xx = l.dyy = l.peak = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= m; i += 8) {
      const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * (first + i)));
      bad = _mm_or_si128(bad, _mm_cmpeq_epi16(_mm_and_si128(h, exponent), exponent));
      Block(h, inv, s, overflow, dst + 2 * (first + i), &l, &top);
    }
    if (i < m) {  // the tail, zero-padded as AddErrorSums pads it: zeros add nothing
      uint8_t tail[16] = {}, codes[16];
      std::memcpy(tail, src + 2 * (first + i), 2 * (m - i));
      const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(tail));
      bad = _mm_or_si128(bad, _mm_cmpeq_epi16(_mm_and_si128(h, exponent), exponent));
      Block(h, inv, s, overflow, codes, &l, &top);
      std::memcpy(dst + 2 * (first + i), codes, 2 * (m - i));
    }
    if (_mm_movemask_epi8(bad)) return false;
    if (error) {
      ErrorLanes lanes;
      _mm256_storeu_ps(lanes.abs_err, l.abs_err);
      _mm256_storeu_ps(lanes.sq_err, l.sq_err);
      _mm256_storeu_ps(lanes.abs_x, l.abs_x);
      _mm256_storeu_ps(lanes.xx, l.xx);
      _mm256_storeu_ps(lanes.yy_minus_xx, l.dyy);
      _mm256_storeu_ps(lanes.max_abs, l.peak);
      if (!AddErrorLanes(lanes, error)) return false;
    }
  }
  int32_t lanes[8];
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(lanes), top);
  *max_code = *std::max_element(lanes, lanes + 8);
  return true;
}

}  // namespace
#endif

bool HasOnePassPath() {
#if defined(__x86_64__)
  static const bool has =
      std::strcmp(dtype_internal::HalfSimdPath(), "f16c") == 0 && __builtin_cpu_supports("avx2");
  return has;
#else
  return false;
#endif
}

bool QuantizeHalf(const uint8_t* src, size_t n, float inv, float s, float overflow, uint8_t* dst,
                  ErrorSums* error, int64_t* max_code) {
#if defined(__x86_64__)
  if (HasOnePassPath()) return QuantizeHalfAvx2(src, n, inv, s, overflow, dst, error, max_code);
#endif
  (void)src, (void)n, (void)inv, (void)s, (void)overflow, (void)dst, (void)error, (void)max_code;
  return false;
}

}  // namespace kvcomp::uquant_internal

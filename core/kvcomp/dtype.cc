#include "core/kvcomp/dtype.h"
#include "core/kvcomp/internal/vector_clones.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "core/kvcomp/internal/dtype_simd.h"
#include "core/kvcomp/internal/quote.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define KVCOMP_HAVE_F16C_PATH 1
#endif
#if defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>
#define KVCOMP_HAVE_NEON_PATH 1
#endif

namespace kvcomp {
namespace {

uint32_t FloatBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}
float BitsFloat(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

}  // namespace

size_t DTypeSize(DType dtype) {
  switch (dtype) {
    case DType::kFP32:
      return 4;
    case DType::kFP16:
    case DType::kBF16:
      return 2;
    case DType::kQ8_0:
      return 34;
    case DType::kQ4_0:
      return 18;
  }
  return 2;
}

bool IsBlockQuantized(DType dtype) { return dtype == DType::kQ8_0 || dtype == DType::kQ4_0; }

size_t ValuesPerElement(DType dtype) { return IsBlockQuantized(dtype) ? 32 : 1; }

absl::string_view DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kFP32:
      return "FP32";
    case DType::kFP16:
      return "FP16";
    case DType::kBF16:
      return "BF16";
    case DType::kQ8_0:
      return "Q8_0";
    case DType::kQ4_0:
      return "Q4_0";
  }
  return "?";
}

bool IsValidDType(uint8_t raw) { return raw >= 1 && raw <= 5; }

absl::StatusOr<DType> ParseDType(absl::string_view name) {
  const std::string upper = absl::AsciiStrToUpper(name);
  if (upper == "FP32" || upper == "F32" || upper == "FLOAT32") return DType::kFP32;
  if (upper == "FP16" || upper == "F16" || upper == "FLOAT16") return DType::kFP16;
  if (upper == "BF16" || upper == "BFLOAT16") return DType::kBF16;
  if (upper == "Q8_0") return DType::kQ8_0;
  if (upper == "Q4_0") return DType::kQ4_0;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown datatype ", Quote(name), " (expected FP32, FP16, BF16, Q8_0 or Q4_0)"));
}

uint16_t FloatToHalfBits(float value) {
  uint32_t x = FloatBits(value);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  uint32_t a = x & 0x7fffffffu;
  if (a >= 0x7f800000u) {  // infinity or NaN
    if (a == 0x7f800000u) return sign | 0x7c00u;
    // NaN: keep the top payload bits and force the quiet bit, as IEEE and F16C do.
    return static_cast<uint16_t>(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
  }
  // 65520 is halfway between the largest half (65504) and 2^16; ties go to even (infinity).
  if (a >= 0x477ff000u) return sign | 0x7c00u;
  if (a < 0x38800000u) {
    // Below 2^-14: adding 0.5f (ulp 2^-24, the half subnormal step) rounds to nearest even
    // in hardware, leaving the subnormal mantissa in the low bits.
    const float rounded = BitsFloat(a) + 0.5f;
    return static_cast<uint16_t>(sign | (FloatBits(rounded) - 0x3f000000u));
  }
  const uint32_t odd = (a >> 13) & 1u;
  a += 0xc8000fffu + odd;  // rebias exponent 127 -> 15 and round to nearest even
  return static_cast<uint16_t>(sign | (a >> 13));
}

float HalfBitsToFloat(uint16_t bits) {
  const uint32_t sign = static_cast<uint32_t>(bits & 0x8000u) << 16;
  const uint32_t exp = (bits >> 10) & 0x1fu;
  const uint32_t mant = bits & 0x3ffu;
  if (exp == 0x1f) return BitsFloat(sign | 0x7f800000u | (mant << 13));
  if (exp == 0) {
    // Subnormal or zero: mant x 2^-24 is exact in float.
    return BitsFloat(sign | FloatBits(static_cast<float>(mant) * 5.9604644775390625e-8f));
  }
  return BitsFloat(sign | ((exp + 112u) << 23) | (mant << 13));
}

uint16_t FloatToBf16Bits(float value) {
  uint32_t x = FloatBits(value);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x0040u);
  x += 0x7fffu + ((x >> 16) & 1u);
  return static_cast<uint16_t>(x >> 16);
}

float Bf16BitsToFloat(uint16_t bits) { return BitsFloat(static_cast<uint32_t>(bits) << 16); }

#ifdef KVCOMP_HAVE_F16C_PATH
namespace {

bool HasF16c() {
  // F16C is read from CPUID leaf 1 (ECX bit 29) because clang 14 has no "f16c" in
  // __builtin_cpu_supports; "avx" there also checks that the OS saves the YMM registers.
  static const bool has = [] {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C) && __builtin_cpu_supports("avx");
  }();
  return has;
}

__attribute__((target("avx,f16c"))) size_t FloatToHalfF16c(const float* in, uint16_t* out,
                                                           size_t count) {
  size_t i = 0;
  for (; i + 8 <= count; i += 8) {
    const __m256 v = _mm256_loadu_ps(in + i);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i),
                     _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  return i;
}

// Float -> half -> float in registers. Exact as the two bulk conversions are: VCVTPH2PS would
// quiet a signalling NaN, but VCVTPS2PH never makes one (it quiets NaNs, as FloatToHalfBits).
__attribute__((target("avx,f16c"))) void RoundThroughHalfF16c(float* v, size_t count) {
  for (size_t i = 0; i + 8 <= count; i += 8) {
    const __m128i h =
        _mm256_cvtps_ph(_mm256_loadu_ps(v + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm256_storeu_ps(v + i, _mm256_cvtph_ps(h));
  }
}

// Widens whole blocks of 8 halves from `in` (any alignment) while checking that none is NaN or
// infinite (all-ones exponent); returns the length widened, or SIZE_MAX when one is not finite.
// For finite values VCVTPH2PS is exact, so the signalling-NaN care of HalfToFloatF16c is moot.
__attribute__((target("avx,f16c"))) size_t FiniteHalfToFloatF16c(const uint8_t* in, float* out,
                                                                 size_t count) {
  const __m128i exponent = _mm_set1_epi16(0x7c00);
  __m128i bad = _mm_setzero_si128();
  size_t i = 0;
  for (; i + 8 <= count; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + 2 * i));
    bad = _mm_or_si128(bad, _mm_cmpeq_epi16(_mm_and_si128(h, exponent), exponent));
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(h));
  }
  return _mm_movemask_epi8(bad) ? SIZE_MAX : i;
}

__attribute__((target("avx,f16c"))) size_t HalfToFloatF16c(const uint16_t* in, float* out,
                                                           size_t count) {
  size_t i = 0;
  const __m128i abs_mask = _mm_set1_epi16(0x7fff), inf = _mm_set1_epi16(0x7c00);
  const __m128i quiet = _mm_set1_epi16(0x0200);
  for (; i + 8 <= count; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i));
    // VCVTPH2PS quiets signalling NaNs; widening must be exact, so such blocks go scalar.
    const __m128i nan = _mm_cmpgt_epi16(_mm_and_si128(h, abs_mask), inf);
    const __m128i snan = _mm_andnot_si128(_mm_cmpeq_epi16(_mm_and_si128(h, quiet), quiet), nan);
    if (_mm_movemask_epi8(snan)) {
      dtype_internal::HalfToFloatScalar(in + i, out + i, 8);
      continue;
    }
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(h));
  }
  return i;
}

}  // namespace
#endif

#ifdef KVCOMP_HAVE_NEON_PATH
namespace {

// FCVTN / FCVTL round to nearest even under the default FPCR (RMode 0, no flush to zero),
// keep signed zeros, infinities and subnormals, and narrow NaNs as the scalar code does.
size_t FloatToHalfNeon(const float* in, uint16_t* out, size_t count) {
  size_t i = 0;
  for (; i + 8 <= count; i += 8) {
    const float16x4_t lo = vcvt_f16_f32(vld1q_f32(in + i));
    const float16x8_t h = vcvt_high_f16_f32(lo, vld1q_f32(in + i + 4));
    vst1q_u16(out + i, vreinterpretq_u16_f16(h));
  }
  return i;
}

size_t HalfToFloatNeon(const uint16_t* in, float* out, size_t count) {
  size_t i = 0;
  const uint16x8_t abs_mask = vdupq_n_u16(0x7fff), inf = vdupq_n_u16(0x7c00);
  const uint16x8_t quiet = vdupq_n_u16(0x0200);
  for (; i + 8 <= count; i += 8) {
    const uint16x8_t bits = vld1q_u16(in + i);
    // FCVTL quiets signalling NaNs; widening must be exact, so such blocks go scalar.
    const uint16x8_t nan = vcgtq_u16(vandq_u16(bits, abs_mask), inf);
    if (vmaxvq_u16(vbicq_u16(nan, vtstq_u16(bits, quiet))) != 0) {
      dtype_internal::HalfToFloatScalar(in + i, out + i, 8);
      continue;
    }
    const float16x8_t h = vreinterpretq_f16_u16(bits);
    vst1q_f32(out + i, vcvt_f32_f16(vget_low_f16(h)));
    vst1q_f32(out + i + 4, vcvt_high_f32_f16(h));
  }
  return i;
}

}  // namespace
#endif

namespace dtype_internal {

void FloatToHalfScalar(const float* in, uint16_t* out, size_t count) {
  for (size_t i = 0; i < count; ++i) out[i] = FloatToHalfBits(in[i]);
}

void HalfToFloatScalar(const uint16_t* in, float* out, size_t count) {
  for (size_t i = 0; i < count; ++i) out[i] = HalfBitsToFloat(in[i]);
}

const char* HalfSimdPath() {
#if defined(KVCOMP_HAVE_F16C_PATH)
  if (HasF16c()) return "f16c";
#elif defined(KVCOMP_HAVE_NEON_PATH)
  return "neon";
#endif
  return "";
}

size_t FloatToHalfSimd(const float* in, uint16_t* out, size_t count) {
#if defined(KVCOMP_HAVE_F16C_PATH)
  if (HasF16c()) return FloatToHalfF16c(in, out, count);
#elif defined(KVCOMP_HAVE_NEON_PATH)
  return FloatToHalfNeon(in, out, count);
#endif
  return 0;
}

size_t HalfToFloatSimd(const uint16_t* in, float* out, size_t count) {
#if defined(KVCOMP_HAVE_F16C_PATH)
  if (HasF16c()) return HalfToFloatF16c(in, out, count);
#elif defined(KVCOMP_HAVE_NEON_PATH)
  return HalfToFloatNeon(in, out, count);
#endif
  return 0;
}

}  // namespace dtype_internal

// The SIMD path converts whole blocks of 8; the scalar reference finishes the tail.
void FloatToHalf(const float* in, uint16_t* out, size_t count) {
  const size_t i = dtype_internal::FloatToHalfSimd(in, out, count);
  dtype_internal::FloatToHalfScalar(in + i, out + i, count - i);
}

void HalfToFloat(const uint16_t* in, float* out, size_t count) {
  const size_t i = dtype_internal::HalfToFloatSimd(in, out, count);
  dtype_internal::HalfToFloatScalar(in + i, out + i, count - i);
}

void FloatToBf16(const float* in, uint16_t* out, size_t count) {
  for (size_t i = 0; i < count; ++i) out[i] = FloatToBf16Bits(in[i]);
}

void Bf16ToFloat(const uint16_t* in, float* out, size_t count) {
  for (size_t i = 0; i < count; ++i) out[i] = Bf16BitsToFloat(in[i]);
}

void ToFloat(DType dtype, const uint8_t* in, float* out, size_t count) {
  if (dtype == DType::kFP32) {
    // Empty tensors may pass null buffers: memcpy from null is undefined even for 0 bytes.
    if (count) std::memcpy(out, in, count * sizeof(float));
    return;
  }
  const auto widen = dtype == DType::kFP16 ? HalfToFloat : Bf16ToFloat;
  if (reinterpret_cast<uintptr_t>(in) % alignof(uint16_t) == 0) {
    widen(reinterpret_cast<const uint16_t*>(in), out, count);
    return;
  }
  // Unaligned input is legal here (views over arbitrary buffers): copied to aligned words.
  uint16_t buf[256];
  for (size_t i = 0; i < count; i += 256) {
    const size_t n = std::min<size_t>(256, count - i);
    std::memcpy(buf, in + 2 * i, 2 * n);
    widen(buf, out + i, n);
  }
}

bool ToFloatIfFinite(DType dtype, const uint8_t* in, float* out, size_t count) {
  size_t done = 0;
#if defined(KVCOMP_HAVE_F16C_PATH)
  if (dtype == DType::kFP16 && HasF16c()) {
    done = FiniteHalfToFloatF16c(in, out, count);
    if (done == SIZE_MAX) return false;
  }
#endif
  ToFloat(dtype, in + done * DTypeSize(dtype), out + done, count - done);
  return AllFinite(out + done, count - done);
}

void RoundThrough(DType dtype, float* values, size_t count) {
  if (dtype == DType::kFP32) return;
  size_t done = 0;
#if defined(KVCOMP_HAVE_F16C_PATH)
  if (dtype == DType::kFP16 && HasF16c()) {
    done = count & ~size_t{7};
    RoundThroughHalfF16c(values, done);
  }
#endif
  uint16_t buf[256];
  for (size_t i = done; i < count; i += 256) {
    const size_t n = std::min<size_t>(256, count - i);
    if (dtype == DType::kFP16) {
      FloatToHalf(values + i, buf, n);
      HalfToFloat(buf, values + i, n);
    } else {
      FloatToBf16(values + i, buf, n);
      Bf16ToFloat(buf, values + i, n);
    }
  }
}

KV_VECTOR_CLONES bool AllFinite(const float* v, size_t count) {
  uint32_t nonfinite = 0;
  for (size_t i = 0; i < count; ++i) {
    uint32_t bits;
    std::memcpy(&bits, &v[i], 4);
    nonfinite |= static_cast<uint32_t>((bits & 0x7f800000u) == 0x7f800000u);
  }
  return nonfinite == 0;
}

}  // namespace kvcomp

// Internal, not part of the API: the paths behind dtype.h's bulk FP16 conversions, exposed so
// that tests compare each SIMD path with the scalar reference on its own, bit for bit.
//
// FloatToHalf and HalfToFloat run the SIMD path of this build and CPU on whole blocks of 8,
// then the scalar reference on the tail. The paths:
//   "f16c"  x86-64 with F16C and AVX, chosen at run time (CPUID)
//   "neon"  AArch64, always (Advanced SIMD is part of the base ARMv8-A architecture)
//   ""      none: the scalar reference does everything
#pragma once

#include <cstddef>
#include <cstdint>

namespace kvcomp::dtype_internal {

// The scalar reference: FloatToHalfBits / HalfBitsToFloat on every element.
void FloatToHalfScalar(const float* in, uint16_t* out, size_t count);
void HalfToFloatScalar(const uint16_t* in, float* out, size_t count);

// The SIMD path used on this machine, by the names above.
const char* HalfSimdPath();

// Convert the longest prefix of whole blocks of 8 with the SIMD path and return its length
// (0 when there is no SIMD path). Each result equals the scalar reference's bit for bit.
size_t FloatToHalfSimd(const float* in, uint16_t* out, size_t count);
size_t HalfToFloatSimd(const uint16_t* in, float* out, size_t count);

}  // namespace kvcomp::dtype_internal

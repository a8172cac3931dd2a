// Shared by the lossy stages: widen a float stream to f32 and narrow it back with IEEE
// rounding, so every quantiser works in one precision whatever the tensor's dtype.
#pragma once

#include <vector>

#include "absl/status/status.h"
#include "kvcomp/stream.h"

namespace kvcomp {

bool IsFloatType(ElemType type);

// Widens a F16/BF16/F32 stream. Lossy stages need finite input: NaN or infinity gives
// INVALID_ARGUMENT naming the stage, pointing the user to a lossless codec.
absl::Status LoadFinite(absl::string_view stage, const Stream& in, std::vector<float>* out);

// Narrows `values` to `type` (F16/BF16/F32) with round to nearest even.
std::vector<uint8_t> StoreAs(ElemType type, const float* values, size_t count);

// Round to nearest, ties to even, for |v| < 2^22: adding and subtracting 1.5 x 2^23 leaves
// the rounded value (IEEE default rounding). Unlike nearbyint it inlines and vectorises.
// Requires no -ffast-math (which would fold the two operations away).
inline float RoundEven(float v) {
  constexpr float kMagic = 12582912.0f;
  return (v + kMagic) - kMagic;
}

// Zigzag mapping of signed codes to unsigned, small magnitudes to small numbers.
inline uint16_t ZigZag16(int32_t v) {
  return static_cast<uint16_t>((static_cast<uint32_t>(v) << 1) ^ static_cast<uint32_t>(v >> 31));
}
inline int32_t UnZigZag16(uint16_t u) {
  return static_cast<int32_t>(u >> 1) ^ -static_cast<int32_t>(u & 1);
}

}  // namespace kvcomp

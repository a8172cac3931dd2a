// Element types of KV tensors and exact IEEE conversions between them.
#pragma once

#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace kvcomp {

// Persistent: written into frames. Never renumber; add new values at the end.
enum class DType : uint8_t {
  kFP32 = 1,
  kFP16 = 2,
  kBF16 = 3,
  // Block-quantised types, as llama.cpp (ggml) stores them: one element is a block of 32
  // values, so a tensor's shape counts blocks. Codecs keep them bit-exact (lossless only): they
  // are already quantised, and kvcomp does not re-quantise them.
  kQ8_0 = 4,  // FP16 scale d, then 32 int8 q: value = d x q (34 bytes)
  kQ4_0 = 5,  // FP16 scale d, then 16 bytes: value j = d x ((nibble j) - 8), j < 16 in the low
              // nibbles, j >= 16 in the high ones (18 bytes)
};

// Bytes of one element: a value, or a block of values for the block-quantised types.
size_t DTypeSize(DType dtype);
// Triton/KServe datatype strings: "FP32", "FP16", "BF16"; "Q8_0", "Q4_0" (ggml's names).
absl::string_view DTypeName(DType dtype);
// True for Q8_0 and Q4_0: elements are blocks, not floats. Float paths (lossy stages, error
// metrics, ToFloat) never see them.
bool IsBlockQuantized(DType dtype);
// Values per element: 1, or 32 for the block-quantised types.
size_t ValuesPerElement(DType dtype);
absl::StatusOr<DType> ParseDType(absl::string_view name);
bool IsValidDType(uint8_t raw);

// Scalar conversions, round to nearest even. NaNs stay NaN (payload truncated, quiet bit set),
// infinities and signed zeros are preserved, subnormals are produced and consumed exactly.
uint16_t FloatToHalfBits(float value);
float HalfBitsToFloat(uint16_t bits);
uint16_t FloatToBf16Bits(float value);
float Bf16BitsToFloat(uint16_t bits);

// Bulk conversions; `out` must hold `count` elements. Widening is exact.
void FloatToHalf(const float* in, uint16_t* out, size_t count);
void HalfToFloat(const uint16_t* in, float* out, size_t count);
void FloatToBf16(const float* in, uint16_t* out, size_t count);
void Bf16ToFloat(const uint16_t* in, float* out, size_t count);

// Widens `count` elements of `dtype` stored little-endian at `in` to float.
void ToFloat(DType dtype, const uint8_t* in, float* out, size_t count);

// ToFloat, then AllFinite on the result, in one pass where the CPU allows (F16C for FP16); when
// it returns false, `out` is unspecified.
bool ToFloatIfFinite(DType dtype, const uint8_t* in, float* out, size_t count);

// Rounds float values to `dtype` and back, in place: what a lossy decoder that computes in
// float and stores `dtype` gives, as a reader widens it.
void RoundThrough(DType dtype, float* values, size_t count);

// True when no value is NaN or infinite. Tests the exponent bits with an OR over the whole
// span, which vectorises (a loop of std::isfinite with an early exit does not).
bool AllFinite(const float* v, size_t count);

}  // namespace kvcomp

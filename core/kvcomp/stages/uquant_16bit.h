// uquant's encoder and decoder for FP16 and BF16 streams in one pass on x86-64 with AVX2 and F16C
// (or AVX-512): each vector of 8 values is widened, quantised, zigzag-stored, decoded as the
// decoder will (code x step, rounded to the stream's format) and its error summed, all in
// registers. The general path makes five passes over L1 chunks for the same (widen, quantise,
// dequantise, round, sum), about a third of bounded(...)'s compress on Llama-shaped FP16. The
// decoder likewise turns codes into values in registers, where the general path stores a chunk
// of floats and reads it back to narrow it. Internal to uquant, and to bounded(...), whose step
// search simulates it.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/kvcomp/dtype.h"
#include "core/kvcomp/error_metrics.h"

namespace kvcomp::uquant_internal {

enum class Format16 { kFP16, kBF16 };

// The format of an FP16 or BF16 dtype; false for FP32.
bool Format16Of(DType dtype, Format16* format);

// uquant's overflow limit at `step`: the smallest magnitude that rounds to infinity in the format
// (to nearest, ties to even: halfway above its largest finite value), or infinity when even code
// 32768 (one past uquant's largest) times the step stays below it, so no code needs the check.
float OverflowAt(Format16 format, double step);

// The one-pass paths: AVX2 + F16C, and AVX-512 (F and BW) beside them. Both give the same
// codes and sums, to the bit.
enum class Path16 { kNone, kAvx2, kAvx512 };

// The fastest path this build and CPU have, and whether there is one.
Path16 BestPath16();
bool HasOnePassPath();

// Codes round(x / step) of the n values at src (any alignment), zigzag-coded into dst, with
// uquant's rules (inv = 1 / step, s = the decoder's step, a code whose value reaches `overflow`
// moves a step toward zero); *max_code gets the largest |code|. With `error`, adds the decoded
// values' error to it, summed over kErrorChunk chunks as AddErrorSumsChunk sums them, to the
// bit. Returns false, with dst and *error in any state, when this CPU or build has no such path,
// a value is not finite, or a chunk's sums need double precision: the caller then runs the
// general path, which reports the value or sums in double.
bool Quantize16(Format16 format, const uint8_t* src, size_t n, float inv, float s, float overflow,
                uint8_t* dst, ErrorSums* error, int64_t* max_code);

// Quantize16 on a given path (tests); false when this CPU or build does not have it.
bool Quantize16On(Path16 path, Format16 format, const uint8_t* src, size_t n, float inv, float s,
                  float overflow, uint8_t* dst, ErrorSums* error, int64_t* max_code);

// The error uquant(step) leaves on the n values at src, as Quantize16 measures it, with the
// stage's own inv, decoder step and OverflowAt; the codes are dropped. False (and *error in
// any state) where Quantize16 would decline.
bool Simulate16(Format16 format, const uint8_t* src, size_t n, double step, ErrorSums* error);

// The decoder's values of the n zigzag codes at src (any alignment): code x s, rounded to the
// format to nearest, as n values at dst; the same bits as DecodeChunk then NarrowChunk. Returns
// false, writing nothing, when this CPU or build has no such path.
bool Dequantize16(Format16 format, const uint8_t* src, size_t n, float s, uint8_t* dst);

// Dequantize16 on a given path (tests).
bool Dequantize16On(Path16 path, Format16 format, const uint8_t* src, size_t n, float s,
                    uint8_t* dst);

}  // namespace kvcomp::uquant_internal

// uquant's encoder and decoder for FP16 streams in one pass on x86-64 with AVX2 and F16C (or
// AVX-512): each vector of 8 halves is widened, quantised, zigzag-stored, decoded as the decoder
// will (code x step, rounded to FP16) and its error summed, all in registers. The general path
// makes five passes over L1 chunks for the same (widen, quantise, dequantise, round, sum), about a
// third of bounded(...)'s compress on Llama-shaped FP16. The decoder likewise turns codes into
// halves in registers, where the general path stores a chunk of floats and reads it back to narrow
// it. Internal to uquant, and to bounded(...), whose step search simulates it.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kvcomp/error_metrics.h"

namespace kvcomp::uquant_internal {

// The one-pass paths: AVX2 + F16C, and AVX-512 (F and BW) beside them. Both give the same
// codes and sums, to the bit.
enum class HalfPath { kNone, kAvx2, kAvx512 };

// The fastest path this build and CPU have, and whether there is one.
HalfPath BestHalfPath();
bool HasOnePassPath();

// Codes round(x / step) of the n FP16 values at src (any alignment), zigzag-coded into dst, with
// uquant's rules (inv = 1 / step, s = the decoder's step, a code whose value reaches `overflow`
// moves a step toward zero); *max_code gets the largest |code|. With `error`, adds the decoded
// values' error to it, summed over kErrorChunk chunks as AddErrorSumsChunk sums them, to the
// bit. Returns false, with dst and *error in any state, when this CPU or build has no such path,
// a value is not finite, or a chunk's sums need double precision: the caller then runs the
// general path, which reports the value or sums in double.
bool QuantizeHalf(const uint8_t* src, size_t n, float inv, float s, float overflow, uint8_t* dst,
                  ErrorSums* error, int64_t* max_code);

// QuantizeHalf on a given path (tests); false when this CPU or build does not have it.
bool QuantizeHalfOn(HalfPath path, const uint8_t* src, size_t n, float inv, float s, float overflow,
                    uint8_t* dst, ErrorSums* error, int64_t* max_code);

// The error uquant(step) leaves on the n FP16 values at src, as QuantizeHalf measures it, with
// the stage's own inv, decoder step and overflow limit; the codes are dropped. False (and *error
// in any state) where QuantizeHalf would decline.
bool SimulateHalf(const uint8_t* src, size_t n, double step, ErrorSums* error);

// The decoder's values of the n zigzag codes at src (any alignment): code x s, rounded to FP16 to
// nearest, as n halves at dst; the same bits as DecodeChunk then NarrowChunk. Returns false,
// writing nothing, when this CPU or build has no such path.
bool DequantizeHalf(const uint8_t* src, size_t n, float s, uint8_t* dst);

// DequantizeHalf on a given path (tests).
bool DequantizeHalfOn(HalfPath path, const uint8_t* src, size_t n, float s, uint8_t* dst);

}  // namespace kvcomp::uquant_internal

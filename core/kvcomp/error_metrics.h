// Error of a decoded tensor against its original, computed in double precision.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "core/kvcomp/tensor.h"

namespace kvcomp {

struct ErrorStats {
  uint64_t count = 0;
  double mae = 0;                     // mean |x - y|
  double rel_mae = 0;                 // mae / mean |x|
  double max_abs = 0;                 // max |x - y|
  double rmse = 0;                    // sqrt(mean (x - y)^2)
  double rel_rmse = 0;                // rmse / sqrt(mean x^2)
  double cosine = 1;                  // <x,y> / (|x| |y|); 1 when both are all zero
  double snr_db = 0;                  // 10 log10(sum x^2 / sum (x - y)^2); +inf when exact
  uint64_t mismatched_nonfinite = 0;  // NaN/Inf positions that differ
  bool exact() const { return max_abs == 0 && mismatched_nonfinite == 0; }
};

// The sums every metric derives from, over the finite pairs (x original, y decoded). |y|^2 is
// kept as its difference from |x|^2, sum (y - x)(y + x): the cosine needs the two norms'
// difference far more precisely than either norm, and a sum of float lanes good to a part per
// million gives each norm, not their difference (which can be a tenth of the error energy).
struct ErrorSums {
  uint64_t count = 0;
  double abs_err = 0, sq_err = 0, abs_x = 0, xx = 0, yy_minus_xx = 0, max_abs = 0;
};
// The metrics of `s` (mismatched_nonfinite left at 0).
ErrorStats StatsFromSums(const ErrorSums& s);

// Adds the pairs x[i], y[i] for i < m (finite) to every sum of `s` but the count, in kLanes
// independent accumulator sets of type Acc, flushed to `s` once. One array per sum, indexed by
// lane, so that the compiler vectorises across the lanes and the dependency chains stay short.
// x and y are zero-padded to a multiple of kLanes, so they need room for that many values;
// zeros add nothing to any sum or to the peak. Always inlined, so that each caller's vector
// clones (vector_clones.h) compile it for their own ISA.
template <typename Acc, size_t kLanes>
[[gnu::always_inline]] inline void AddErrorSums(float* x, float* y, size_t m, ErrorSums* s) {
  size_t padded = m;
  for (; padded % kLanes; ++padded) x[padded] = y[padded] = 0;
  Acc abs_err[kLanes] = {}, sq_err[kLanes] = {}, abs_x[kLanes] = {}, xx[kLanes] = {},
      dyy[kLanes] = {}, peak[kLanes] = {};
  for (size_t i = 0; i < padded; i += kLanes) {
    for (size_t k = 0; k < kLanes; ++k) {
      const Acc a = x[i + k], b = y[i + k], d = a - b, ad = std::fabs(d);
      abs_err[k] += ad;
      sq_err[k] += d * d;
      abs_x[k] += std::fabs(a);
      xx[k] += a * a;
      dyy[k] += (b - a) * (b + a);
      peak[k] = ad > peak[k] ? ad : peak[k];
    }
  }
  for (size_t k = 0; k < kLanes; ++k) {
    s->abs_err += abs_err[k];
    s->sq_err += sq_err[k];
    s->abs_x += abs_x[k];
    s->xx += xx[k];
    s->yy_minus_xx += dyy[k];
    s->max_abs = std::max<double>(s->max_abs, peak[k]);
  }
}

// MeasureError sums the pairs in chunks of this many, from element 0, with AddErrorSumsChunk: an
// encoder that sums the same chunks of the same floats the same way reports, bit for bit, the
// error MeasureError will find on the decoded tensor.
inline constexpr size_t kErrorChunk = 4096;

// Adds a chunk of at most kErrorChunk pairs (x and y padded as for AddErrorSums) to `s`:
// AddErrorSums<float, 8>, compiled for the CPU's widest vectors (vector_clones.h), good to a few
// parts per million; or, for a chunk where float squares would overflow or sink into the
// subnormals (FP32 values beyond about 1e17 or below 1e-13), AddErrorSums<double, 4>.
void AddErrorSumsChunk(float* x, float* y, size_t m, ErrorSums* s);

// The per-lane float sums of AddErrorSums<float, 8> over one chunk (lane k holds the pairs
// i = k mod 8), for an encoder that computes them in its own loop, in the same order with the
// same operations, and so gets the same bits.
struct ErrorLanes {
  float abs_err[8] = {}, sq_err[8] = {}, abs_x[8] = {}, xx[8] = {}, yy_minus_xx[8] = {},
        max_abs[8] = {};
};
// Adds a chunk's lanes to `s` exactly as AddErrorSumsChunk adds its own, and returns true; or
// returns false, leaving `s` as it was, for a chunk where AddErrorSumsChunk would have summed
// in double instead (its float squares overflow or go subnormal).
bool AddErrorLanes(const ErrorLanes& lanes, ErrorSums* s);

// Both views must have the same element count; dtypes may differ (e.g. FP32 vs FP16).
// Non-finite values are excluded from the sums and counted when they do not match.
ErrorStats MeasureError(const TensorView& original, const TensorView& decoded);

}  // namespace kvcomp

// Error of a decoded tensor against its original, computed in double precision.
#pragma once

#include <cstdint>

#include "kvcomp/tensor.h"

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

// The sums every metric derives from, over the finite pairs (x original, y decoded).
struct ErrorSums {
  uint64_t count = 0;
  double abs_err = 0, sq_err = 0, abs_x = 0, xx = 0, yy = 0, xy = 0, max_abs = 0;
};
// The metrics of `s` (mismatched_nonfinite left at 0).
ErrorStats StatsFromSums(const ErrorSums& s);

// Both views must have the same element count; dtypes may differ (e.g. FP32 vs FP16).
// Non-finite values are excluded from the sums and counted when they do not match.
ErrorStats MeasureError(const TensorView& original, const TensorView& decoded);

}  // namespace kvcomp

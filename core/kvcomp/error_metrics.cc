#include "kvcomp/error_metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kvcomp/vector_clones.h"

namespace kvcomp {

KV_VECTOR_CLONES ErrorStats MeasureError(const TensorView& original, const TensorView& decoded) {
  ErrorSums sums;
  uint64_t mismatched = 0;
  const uint64_t n = std::min(original.meta().NumElements(), decoded.meta().NumElements());
  const size_t xs = DTypeSize(original.meta().dtype);
  const size_t ys = DTypeSize(decoded.meta().dtype);
  constexpr size_t kChunk = 1024;  // x and y together in a quarter of L1
  float x[kChunk], y[kChunk];
  for (uint64_t base = 0; base < n; base += kChunk) {
    const size_t m = static_cast<size_t>(std::min<uint64_t>(kChunk, n - base));
    ToFloat(original.meta().dtype, original.bytes().data() + base * xs, x, m);
    ToFloat(decoded.meta().dtype, decoded.bytes().data() + base * ys, y, m);
    if (!AllFinite(x, m) || !AllFinite(y, m)) {
      // Rare: set non-finite pairs aside (counting mismatches) and zero them out of the sums.
      for (size_t i = 0; i < m; ++i) {
        if (std::isfinite(x[i]) && std::isfinite(y[i])) continue;
        const bool same = (std::isnan(x[i]) && std::isnan(y[i])) || x[i] == y[i];
        if (!same) ++mismatched;
        x[i] = y[i] = 0;
        --sums.count;
      }
    }
    sums.count += m;
    // Double sums in four lanes (two ran at half the speed, eight no faster than four).
    AddErrorSums<double, 4>(x, y, m, &sums);
  }
  ErrorStats out = StatsFromSums(sums);
  out.mismatched_nonfinite = mismatched;
  return out;
}

KV_VECTOR_CLONES void AddErrorSumsChunk(float* x, float* y, size_t m, ErrorSums* s) {
  AddErrorSums<float, 8>(x, y, m, s);
}

ErrorStats StatsFromSums(const ErrorSums& s) {
  ErrorStats e;
  e.count = s.count;
  e.max_abs = s.max_abs;
  if (e.count == 0) return e;
  const double c = static_cast<double>(e.count);
  e.mae = s.abs_err / c;
  e.rmse = std::sqrt(s.sq_err / c);
  e.rel_mae = s.abs_x > 0 ? s.abs_err / s.abs_x : (s.abs_err > 0 ? INFINITY : 0);
  e.rel_rmse = s.xx > 0 ? std::sqrt(s.sq_err / s.xx) : (s.sq_err > 0 ? INFINITY : 0);
  const double yy = std::max(0.0, s.xx + s.yy_minus_xx);
  if (s.xx == 0 && yy == 0) {
    e.cosine = 1;
  } else if (s.xx == 0 || yy == 0) {
    e.cosine = 0;
  } else {
    // From the error energy, not from a sum of products: <x,y> = (|x|^2 + |y|^2 - |x-y|^2) / 2
    // exactly, and in this form a relative error in |x|^2 cancels to first order.
    e.cosine = std::min(1.0, (2 * s.xx + s.yy_minus_xx - s.sq_err) / (2 * std::sqrt(s.xx * yy)));
  }
  e.snr_db =
      s.sq_err == 0 ? std::numeric_limits<double>::infinity() : 10.0 * std::log10(s.xx / s.sq_err);
  return e;
}

}  // namespace kvcomp

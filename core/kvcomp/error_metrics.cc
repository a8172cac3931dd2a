#include "kvcomp/error_metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace kvcomp {

ErrorStats MeasureError(const TensorView& original, const TensorView& decoded) {
  ErrorStats e;
  const uint64_t n = std::min(original.meta().NumElements(), decoded.meta().NumElements());
  const size_t xs = DTypeSize(original.meta().dtype);
  const size_t ys = DTypeSize(decoded.meta().dtype);
  double sum_abs_err = 0, sum_sq_err = 0, sum_abs_x = 0, sum_xx = 0, sum_yy = 0, sum_xy = 0;
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
        if (!same) ++e.mismatched_nonfinite;
        x[i] = y[i] = 0;
        --e.count;
      }
    }
    e.count += m;
    // kLanes independent accumulator sets keep the dependency chains short (two lanes ran at
    // half the speed, eight no faster than four). The chunk is zero-padded to a multiple of
    // kLanes: zeros add nothing to any sum or to the peak.
    constexpr size_t kLanes = 4;
    size_t padded = m;
    for (; padded % kLanes; ++padded) x[padded] = y[padded] = 0;
    // One array per sum, indexed by lane, so that the compiler vectorises across the lanes.
    double abs_err[kLanes] = {}, sq_err[kLanes] = {}, abs_x[kLanes] = {}, xx[kLanes] = {},
           yy[kLanes] = {}, xy[kLanes] = {}, peak[kLanes] = {};
    for (size_t i = 0; i < padded; i += kLanes) {
      for (size_t k = 0; k < kLanes; ++k) {
        const double a = x[i + k], b = y[i + k], d = a - b, ad = std::fabs(d);
        abs_err[k] += ad;
        sq_err[k] += d * d;
        abs_x[k] += std::fabs(a);
        xx[k] += a * a;
        yy[k] += b * b;
        xy[k] += a * b;
        peak[k] = ad > peak[k] ? ad : peak[k];
      }
    }
    for (size_t k = 0; k < kLanes; ++k) {
      sum_abs_err += abs_err[k];
      sum_sq_err += sq_err[k];
      sum_abs_x += abs_x[k];
      sum_xx += xx[k];
      sum_yy += yy[k];
      sum_xy += xy[k];
      e.max_abs = std::max(e.max_abs, peak[k]);
    }
  }
  ErrorSums sums{e.count, sum_abs_err, sum_sq_err, sum_abs_x, sum_xx, sum_yy, sum_xy, e.max_abs};
  ErrorStats out = StatsFromSums(sums);
  out.mismatched_nonfinite = e.mismatched_nonfinite;
  return out;
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
  if (s.xx == 0 && s.yy == 0) {
    e.cosine = 1;
  } else if (s.xx == 0 || s.yy == 0) {
    e.cosine = 0;
  } else {
    e.cosine = s.xy / (std::sqrt(s.xx) * std::sqrt(s.yy));
  }
  e.snr_db =
      s.sq_err == 0 ? std::numeric_limits<double>::infinity() : 10.0 * std::log10(s.xx / s.sq_err);
  return e;
}

}  // namespace kvcomp

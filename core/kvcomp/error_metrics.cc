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
  constexpr size_t kChunk = 4096;
  float x[kChunk], y[kChunk];
  for (uint64_t base = 0; base < n; base += kChunk) {
    const size_t m = static_cast<size_t>(std::min<uint64_t>(kChunk, n - base));
    ToFloat(original.meta().dtype, original.bytes().data() + base * xs, x, m);
    ToFloat(decoded.meta().dtype, decoded.bytes().data() + base * ys, y, m);
    bool all_finite = true;
    for (size_t i = 0; i < m; ++i)
      all_finite = all_finite && std::isfinite(x[i]) && std::isfinite(y[i]);
    if (!all_finite) {
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
    // Four independent accumulator sets keep the dependency chains short. The chunk is
    // zero-padded to a multiple of 4: zeros add nothing to any sum or to the peak.
    size_t padded = m;
    for (; padded % 4; ++padded) x[padded] = y[padded] = 0;
    double acc[4][6] = {};
    double peak[4] = {};
    for (size_t i = 0; i < padded; i += 4) {
      for (int k = 0; k < 4; ++k) {
        const double a = x[i + k], b = y[i + k], d = a - b;
        acc[k][0] += std::fabs(d);
        acc[k][1] += d * d;
        acc[k][2] += std::fabs(a);
        acc[k][3] += a * a;
        acc[k][4] += b * b;
        acc[k][5] += a * b;
        peak[k] = std::max(peak[k], std::fabs(d));
      }
    }
    for (int k = 0; k < 4; ++k) {
      sum_abs_err += acc[k][0];
      sum_sq_err += acc[k][1];
      sum_abs_x += acc[k][2];
      sum_xx += acc[k][3];
      sum_yy += acc[k][4];
      sum_xy += acc[k][5];
      e.max_abs = std::max(e.max_abs, peak[k]);
    }
  }
  if (e.count == 0) return e;
  const double c = static_cast<double>(e.count);
  e.mae = sum_abs_err / c;
  e.rmse = std::sqrt(sum_sq_err / c);
  e.rel_mae = sum_abs_x > 0 ? sum_abs_err / sum_abs_x : (sum_abs_err > 0 ? INFINITY : 0);
  e.rel_rmse = sum_xx > 0 ? std::sqrt(sum_sq_err / sum_xx) : (sum_sq_err > 0 ? INFINITY : 0);
  if (sum_xx == 0 && sum_yy == 0) {
    e.cosine = 1;
  } else if (sum_xx == 0 || sum_yy == 0) {
    e.cosine = 0;
  } else {
    e.cosine = sum_xy / (std::sqrt(sum_xx) * std::sqrt(sum_yy));
  }
  e.snr_db = sum_sq_err == 0 ? std::numeric_limits<double>::infinity()
                             : 10.0 * std::log10(sum_xx / sum_sq_err);
  return e;
}

}  // namespace kvcomp

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
    for (size_t i = 0; i < m; ++i) {
      if (!std::isfinite(x[i]) || !std::isfinite(y[i])) {
        const bool same = (std::isnan(x[i]) && std::isnan(y[i])) || x[i] == y[i];
        if (!same) ++e.mismatched_nonfinite;
        continue;
      }
      const double a = x[i], b = y[i], d = a - b;
      sum_abs_err += std::fabs(d);
      sum_sq_err += d * d;
      e.max_abs = std::max(e.max_abs, std::fabs(d));
      sum_abs_x += std::fabs(a);
      sum_xx += a * a;
      sum_yy += b * b;
      sum_xy += a * b;
      ++e.count;
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

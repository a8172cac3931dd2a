#include "core/kvcomp/error_metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/kvcomp/internal/vector_clones.h"

namespace kvcomp {

KV_VECTOR_CLONES ErrorStats MeasureError(const TensorView& original, const TensorView& decoded) {
  ErrorSums sums;
  uint64_t mismatched = 0;
  const uint64_t n = std::min(original.meta().NumElements(), decoded.meta().NumElements());
  const size_t xs = DTypeSize(original.meta().dtype);
  const size_t ys = DTypeSize(decoded.meta().dtype);
  float x[kErrorChunk + 8], y[kErrorChunk + 8];  // AddErrorSums pads to its lanes
  for (uint64_t base = 0; base < n; base += kErrorChunk) {
    const size_t m = static_cast<size_t>(std::min<uint64_t>(kErrorChunk, n - base));
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
    AddErrorSumsChunk(x, y, m, &sums);
  }
  ErrorStats out = StatsFromSums(sums);
  out.mismatched_nonfinite = mismatched;
  return out;
}

namespace {

// Whether float sums of a chunk hold every metric to a few parts per million. Each term is at
// most its sum, so sums of |x| and |x - y| under 1e17 keep every square and product under 1e34
// and their sums of 4096 finite. A nonzero sum of squares of at least 1e-25 has a term of at
// least 1e-29, a normal float, beside which the subnormal terms' rounding (under 1e-41 in all)
// is nothing; below that, or zero with nonzero values, the squares went subnormal.
bool FloatSumsHold(const ErrorSums& c) {
  constexpr double kLarge = 1e17, kTiny = 1e-25;
  const auto holds = [](double squares, double magnitudes) {
    return squares == 0 ? magnitudes == 0 : squares >= kTiny;
  };
  return c.abs_x < kLarge && c.abs_err < kLarge && std::isfinite(c.xx) && std::isfinite(c.sq_err) &&
         std::isfinite(c.yy_minus_xx) && holds(c.xx, c.abs_x) && holds(c.sq_err, c.abs_err);
}

void AddChunk(const ErrorSums& c, ErrorSums* s) {
  s->abs_err += c.abs_err;
  s->sq_err += c.sq_err;
  s->abs_x += c.abs_x;
  s->xx += c.xx;
  s->yy_minus_xx += c.yy_minus_xx;
  s->max_abs = std::max(s->max_abs, c.max_abs);
}

}  // namespace

KV_VECTOR_CLONES void AddErrorSumsChunk(float* x, float* y, size_t m, ErrorSums* s) {
  ErrorSums c;
  AddErrorSums<float, 8>(x, y, m, &c);
  if (!FloatSumsHold(c)) {
    c = ErrorSums{};
    AddErrorSums<double, 4>(x, y, m, &c);
  }
  AddChunk(c, s);
}

bool AddErrorLanes(const ErrorLanes& l, ErrorSums* s) {
  ErrorSums c;  // AddErrorSums's flush of its lanes, in its order
  for (size_t k = 0; k < 8; ++k) {
    c.abs_err += l.abs_err[k];
    c.sq_err += l.sq_err[k];
    c.abs_x += l.abs_x[k];
    c.xx += l.xx[k];
    c.yy_minus_xx += l.yy_minus_xx[k];
    c.max_abs = std::max<double>(c.max_abs, l.max_abs[k]);
  }
  if (!FloatSumsHold(c)) return false;
  AddChunk(c, s);
  return true;
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

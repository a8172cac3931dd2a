#include "core/kvcomp/error_metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

namespace kvcomp {
namespace {

Tensor F32(std::vector<float> v) {
  Tensor t;
  t.meta.dtype = DType::kFP32;
  t.meta.shape = {static_cast<int64_t>(v.size())};
  t.bytes.resize(v.size() * 4);
  std::memcpy(t.bytes.data(), v.data(), t.bytes.size());
  return t;
}

TEST(ErrorMetricsTest, KnownValues) {
  const Tensor x = F32({1, -2, 3, -4});
  const Tensor y = F32({1, -2, 3.5, -4.5});
  const ErrorStats e = MeasureError(x.view(), y.view());
  EXPECT_EQ(e.count, 4u);
  EXPECT_DOUBLE_EQ(e.mae, 0.25);
  EXPECT_DOUBLE_EQ(e.rel_mae, 1.0 / 10);
  EXPECT_DOUBLE_EQ(e.max_abs, 0.5);
  EXPECT_DOUBLE_EQ(e.rmse, std::sqrt(0.5 / 4));
  const double dot = 1 + 4 + 10.5 + 18, nx = std::sqrt(30.0), ny = std::sqrt(1 + 4 + 12.25 + 20.25);
  EXPECT_NEAR(e.cosine, dot / (nx * ny), 1e-15);
  EXPECT_NEAR(e.snr_db, 10 * std::log10(30 / 0.5), 1e-12);
  EXPECT_FALSE(e.exact());
}

TEST(ErrorMetricsTest, ExactAndNonFinite) {
  const Tensor x = F32({0, NAN, INFINITY, -0.0f});
  EXPECT_TRUE(MeasureError(x.view(), x.view()).exact());
  EXPECT_TRUE(std::isinf(MeasureError(x.view(), x.view()).snr_db));
  const Tensor y = F32({0, 1, INFINITY, 0});
  EXPECT_EQ(MeasureError(x.view(), y.view()).mismatched_nonfinite, 1u);
}

// The metrics straight from their definitions, in long double.
ErrorStats Reference(const std::vector<float>& x, const std::vector<float>& y) {
  long double abs_err = 0, sq_err = 0, abs_x = 0, xx = 0, yy = 0, xy = 0, peak = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const long double a = x[i], b = y[i], d = a - b;
    abs_err += std::fabs(d);
    sq_err += d * d;
    abs_x += std::fabs(a);
    xx += a * a;
    yy += b * b;
    xy += a * b;
    peak = std::max(peak, std::fabs(d));
  }
  ErrorStats e;
  e.count = x.size();
  e.mae = static_cast<double>(abs_err / x.size());
  e.rel_mae = static_cast<double>(abs_err / abs_x);
  e.max_abs = static_cast<double>(peak);
  e.rmse = static_cast<double>(std::sqrt(sq_err / x.size()));
  e.rel_rmse = static_cast<double>(std::sqrt(sq_err / xx));
  e.cosine = static_cast<double>(xy / std::sqrt(xx * yy));
  return e;
}

// Values at `scale` with a relative error of about 1e-3, over several chunks and a ragged tail.
void ExpectNearReference(double scale) {
  std::mt19937 rng(static_cast<uint32_t>(std::log10(scale) + 100));
  std::normal_distribution<float> normal;
  std::vector<float> x(3 * 4096 + 13), y(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    x[i] = static_cast<float>(normal(rng) * scale);
    y[i] = x[i] * (1 + 1e-3f * normal(rng));
  }
  const ErrorStats e = MeasureError(F32(x).view(), F32(y).view());
  const ErrorStats r = Reference(x, y);
  SCOPED_TRACE(scale);
  EXPECT_EQ(e.count, r.count);
  EXPECT_NEAR(e.mae, r.mae, 1e-5 * r.mae);
  EXPECT_NEAR(e.rel_mae, r.rel_mae, 1e-5 * r.rel_mae);
  EXPECT_NEAR(e.max_abs, r.max_abs, 1e-6 * r.max_abs);
  EXPECT_NEAR(e.rmse, r.rmse, 1e-5 * r.rmse);
  EXPECT_NEAR(e.rel_rmse, r.rel_rmse, 1e-5 * r.rel_rmse);
  EXPECT_NEAR(1 - e.cosine, 1 - r.cosine, 1e-4 * (1 - r.cosine));
}

// Float sums would overflow on the large (squares past 3.4e38) and lose the small to the
// subnormals: those chunks are summed in double.
TEST(ErrorMetricsTest, MatchesDefinitionsAcrossFp32Range) {
  for (double scale : {1e-30, 1e-18, 1e-12, 1e-3, 1.0, 1e4, 1e16, 1e19, 1e30}) {
    ExpectNearReference(scale);
  }
}

}  // namespace
}  // namespace kvcomp

#include "kvcomp/error_metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

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

}  // namespace
}  // namespace kvcomp

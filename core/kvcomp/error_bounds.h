// Error thresholds a lossy result must meet, as users state them: any subset of cosine,
// MAE, relative MAE, max abs error, relative RMSE and SNR.
#pragma once

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "core/kvcomp/error_metrics.h"
#include "core/kvcomp/spec.h"

namespace kvcomp {

struct ErrorBounds {
  std::optional<double> cosine;    // cosine >= this
  std::optional<double> mae;       // mae <= this
  std::optional<double> rel_mae;   // mae / mean|x| <= this
  std::optional<double> max_abs;   // max |x - y| <= this
  std::optional<double> rel_rmse;  // rmse / rms(x) <= this
  std::optional<double> snr_db;    // snr >= this

  bool empty() const;
  // Every bound set is finite and in range: a cosine in (0, 1], an error >= 0, any finite SNR
  // (the rule ParseErrorBounds applies to spec arguments).
  absl::Status Validate() const;
  // With a relative `margin`, each bound is tightened by it (an error bound b becomes
  // b (1 - margin), a cosine bound c becomes 1 - (1 - c)(1 - margin)): for errors computed with
  // float sums, good to a few parts per million.
  bool Pass(const ErrorStats& e, double margin = 0) const;
  // How far `e` overshoots the bounds, in the scale of a quantisation step: errors grow with the
  // step, 1 - cos with its square, SNR falls 20 dB per decade. 1 or less when it passes; a
  // step divided by this is about the coarsest that would.
  double Overshoot(const ErrorStats& e) const;
  // The bounds `e` breaks, e.g. "cos 0.99971 < 0.9999"; empty when it passes.
  std::string Violations(const ErrorStats& e) const;
  std::string ToString() const;  // "cos=0.9999,rel_mae=0.01"
};

// Reads bounds from spec arguments: cos=, mae=, rel_mae=, max_abs=, rel_rmse=, snr_db=.
// Arguments with other keys are left to the caller (`other` receives them when not null).
absl::StatusOr<ErrorBounds> ParseErrorBounds(const SpecNode& node,
                                             std::vector<const SpecArg*>* other = nullptr);

}  // namespace kvcomp

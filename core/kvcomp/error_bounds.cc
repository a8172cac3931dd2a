#include "core/kvcomp/error_bounds.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/kvcomp/internal/quote.h"
#include "core/kvcomp/internal/status_macros.h"

namespace kvcomp {
namespace {

struct BoundField {
  absl::string_view key;
  std::optional<double> ErrorBounds::*field;
  bool at_least;  // true: the metric must be >= the bound
  double ErrorStats::*metric;
};

constexpr BoundField kFields[] = {
    {"cos", &ErrorBounds::cosine, true, &ErrorStats::cosine},
    {"mae", &ErrorBounds::mae, false, &ErrorStats::mae},
    {"rel_mae", &ErrorBounds::rel_mae, false, &ErrorStats::rel_mae},
    {"max_abs", &ErrorBounds::max_abs, false, &ErrorStats::max_abs},
    {"rel_rmse", &ErrorBounds::rel_rmse, false, &ErrorStats::rel_rmse},
    {"snr_db", &ErrorBounds::snr_db, true, &ErrorStats::snr_db},
};

// The one range rule for a bound, from a spec or from an API's thresholds: finite; a cosine in
// (0, 1]; an error >= 0; any finite SNR.
absl::Status CheckBound(const BoundField& f, double v) {
  const bool in_range = std::isfinite(v) && (f.metric == &ErrorStats::cosine   ? v > 0 && v <= 1
                                             : f.metric == &ErrorStats::snr_db ? true
                                                                               : v >= 0);
  if (in_range) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("bound '", f.key, "' = ", v, " is out of range (",
                   f.metric == &ErrorStats::cosine   ? "a cosine in (0, 1]"
                   : f.metric == &ErrorStats::snr_db ? "a finite number of dB"
                                                     : "a finite error >= 0",
                   ")"));
}

}  // namespace

absl::Status ErrorBounds::Validate() const {
  for (const auto& f : kFields) {
    if (const auto& bound = this->*f.field) KV_RETURN_IF_ERROR(CheckBound(f, *bound));
  }
  return absl::OkStatus();
}

bool ErrorBounds::empty() const {
  for (const auto& f : kFields) {
    if ((this->*f.field).has_value()) return false;
  }
  return true;
}

namespace {
// Whether `e` meets field f's bound `bound`, tightened by a relative `margin`.
bool Holds(const BoundField& f, double bound, const ErrorStats& e, double margin = 0) {
  const double v = e.*f.metric;
  if (margin == 0) return f.at_least ? v >= bound : v <= bound;
  if (f.metric == &ErrorStats::cosine) return 1 - v <= (1 - bound) * (1 - margin);
  if (f.at_least) return v >= bound - 10 * std::log10(1 - margin);  // snr_db
  return v <= bound * (1 - margin);
}

// How far the metric of field f overshoots `bound`, in step units (see Overshoot).
double StepRatio(const BoundField& f, double bound, const ErrorStats& e) {
  const double v = e.*f.metric;
  if (f.metric == &ErrorStats::cosine) return bound < 1 ? std::sqrt((1 - v) / (1 - bound)) : 1e9;
  if (f.at_least) return std::pow(10.0, (bound - v) / 20);  // snr_db
  return bound > 0 ? v / bound : (v > 0 ? 1e9 : 0);
}
}  // namespace

// Without building Violations' message: the step search calls this a dozen times per tensor.
bool ErrorBounds::Pass(const ErrorStats& e, double margin) const {
  if (e.mismatched_nonfinite) return false;
  for (const auto& f : kFields) {
    if (const auto& bound = this->*f.field; bound && !Holds(f, *bound, e, margin)) return false;
  }
  return true;
}

double ErrorBounds::Overshoot(const ErrorStats& e) const {
  double worst = 0;
  for (const auto& f : kFields) {
    if (const auto& bound = this->*f.field) worst = std::max(worst, StepRatio(f, *bound, e));
  }
  return worst;
}

std::string ErrorBounds::Violations(const ErrorStats& e) const {
  std::vector<std::string> out;
  if (e.mismatched_nonfinite)
    out.push_back(absl::StrCat(e.mismatched_nonfinite, " non-finite values changed"));
  for (const auto& f : kFields) {
    const auto& bound = this->*f.field;
    if (!bound || Holds(f, *bound, e)) continue;
    absl::StrAppend(&out.emplace_back(), f.key, " ", e.*f.metric, f.at_least ? " < " : " > ",
                    *bound);
  }
  return absl::StrJoin(out, ", ");
}

std::string ErrorBounds::ToString() const {
  std::vector<std::string> out;
  for (const auto& f : kFields) {
    if (const auto& b = this->*f.field) out.push_back(absl::StrCat(f.key, "=", *b));
  }
  return absl::StrJoin(out, ",");
}

absl::StatusOr<ErrorBounds> ParseErrorBounds(const SpecNode& node,
                                             std::vector<const SpecArg*>* other) {
  ErrorBounds b;
  for (const SpecArg& arg : node.args) {
    const BoundField* field = nullptr;
    for (const auto& f : kFields) {
      if (f.key == arg.key) field = &f;
    }
    if (!field) {
      if (other) {
        other->push_back(&arg);
        continue;
      }
      return absl::InvalidArgumentError(absl::StrCat(
          node.name, ": unknown bound ", Quote(arg.key.empty() ? FormatSpec(arg.value) : arg.key),
          " (use cos=, mae=, rel_mae=, max_abs=, rel_rmse=, snr_db=)"));
    }
    double v;
    if (!absl::SimpleAtod(SpecNode::Scalar(arg), &v) || !std::isfinite(v)) {
      return absl::InvalidArgumentError(absl::StrCat(
          node.name, ": bound '", arg.key, "' needs a number, got ", Quote(FormatSpec(arg.value))));
    }
    if (absl::Status s = CheckBound(*field, v); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(node.name, ": ", s.message()));
    }
    b.*(field->field) = v;
  }
  return b;
}

}  // namespace kvcomp

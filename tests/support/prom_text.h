// A parser for the Prometheus text exposition format (version 0.0.4), enough to read counter,
// gauge and histogram samples by name and labels.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace kvcomp::testing {

using PromLabels = std::map<std::string, std::string>;

struct PromSample {
  std::string name;  // e.g. "grpc_server_handling_seconds_bucket"
  PromLabels labels;
  double value = 0;
};

class PromMetrics {
 public:
  // DATA_LOSS naming the line when the text is malformed.
  static absl::StatusOr<PromMetrics> Parse(absl::string_view text);

  // The samples named `name` whose labels include every pair of `match`.
  std::vector<PromSample> Find(absl::string_view name, const PromLabels& match = {}) const;
  // The value of the one sample named `name` with exactly the labels `labels`.
  std::optional<double> Value(absl::string_view name, const PromLabels& labels) const;
  // Sum over Find(name, match); 0 when none.
  double Sum(absl::string_view name, const PromLabels& match = {}) const;
  // From "# TYPE name type"; empty when not declared.
  std::string TypeOf(absl::string_view family) const;

  const std::vector<PromSample>& samples() const { return samples_; }

 private:
  std::vector<PromSample> samples_;
  std::map<std::string, std::string, std::less<>> types_;
};

}  // namespace kvcomp::testing

// Analyze: the seed's whole study in one call. Runs every configuration (named sweeps and
// explicit specs) over every tensor of a cache, measures ratio (metadata counted), error and
// speed per tensor, and recommends the best-ratio policy that meets the user's thresholds
// and byte budget, as a spec string Compress accepts unchanged.
#pragma once

#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/kvcomp/codec.h"
#include "core/kvcomp/error_bounds.h"

namespace kvcomp {

struct AnalysisOptions {
  std::vector<std::string> sweeps;       // names from SweepNames(); empty with no specs: "default"
  std::vector<std::string> specs;        // explicit configurations
  ErrorBounds k_bounds, v_bounds;        // every K / V tensor must meet these
  std::optional<uint64_t> budget_bytes;  // compressed size allowed for the whole cache
  uint64_t max_tokens = 0;  // > 0: analyse this many tokens per tensor, in evenly spaced blocks
  uint32_t max_layers = 0;  // > 0: analyse this many evenly spaced layers
  // Inverse-RoPE check on K: rotary base and pair layout ("interleaved" or "half").
  std::optional<double> rope_theta;
  std::string rope_pairs = "interleaved";
  std::function<bool()> cancelled;  // polled between tensors
  std::function<void(size_t done, size_t total)> progress;
};

struct TensorResult {
  TensorReport report;  // ratio, sizes, concrete pipeline and (lossy) error
  double compress_seconds = 0;
  double decompress_seconds = 0;
};

// Worst value of each metric over a set of tensors.
struct WorstError {
  double cosine = 1, mae = 0, rel_mae = 0, max_abs = 0, rmse = 0, rel_rmse = 0;
  double snr_db = std::numeric_limits<double>::infinity();
  void Add(const ErrorStats& e);
  ErrorStats AsStats() const;
};

struct ConfigResult {
  std::string spec;
  std::string error;  // non-empty when the configuration failed to run on some tensor
  std::vector<TensorResult> tensors;  // same order as the analysed tensors
  uint64_t raw_k = 0, raw_v = 0, packed_k = 0, packed_v = 0;
  WorstError worst_k, worst_v;
  bool lossless = true;
  double compress_seconds = 0, decompress_seconds = 0;
  double ratio_k() const { return packed_k ? double(raw_k) / packed_k : 0; }
  double ratio_v() const { return packed_v ? double(raw_v) / packed_v : 0; }
  double ratio() const {
    return packed_k + packed_v ? double(raw_k + raw_v) / (packed_k + packed_v) : 0;
  }
  bool passes = false;
  std::string verdict;  // why it passes or fails the thresholds and budget
};

struct Recommendation {
  bool found = false;
  std::string spec;  // pass to Compress unchanged
  double ratio = 0;
  std::string why;  // one line on why it won (or, when !found, what came closest)
  std::vector<std::pair<std::string, std::string>> runners_up;  // spec, why it lost
};

struct RopeCheck {
  double ratio_native = 0;     // zstd(3) on K as cached
  double ratio_inverse = 0;    // zstd(3) on K with RoPE undone (rounded to the same dtype)
  double mean_abs_change = 0;  // how much undoing RoPE moves the values
};

struct AnalysisReport {
  std::string sampling;  // what was analysed, stated plainly
  uint64_t analysed_raw_bytes = 0, full_raw_bytes = 0;
  std::vector<ConfigResult> configs;
  Recommendation recommendation;
  std::optional<RopeCheck> rope;
};

// The named sweeps and what each expands to for a cache of `dtype`.
std::vector<std::string> SweepNames();
absl::StatusOr<std::vector<std::string>> ExpandSweep(absl::string_view name, DType dtype,
                                                     const AnalysisOptions& options);

absl::StatusOr<AnalysisReport> AnalyzeCache(absl::Span<const TensorView> cache,
                                            const AnalysisOptions& options);

}  // namespace kvcomp

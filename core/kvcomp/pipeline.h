// A pipeline: a chain of stages applied to one tensor, and its frame encoding.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kvcomp/frame.h"
#include "kvcomp/spec.h"
#include "kvcomp/stage.h"
#include "kvcomp/tensor.h"

namespace kvcomp {

class Pipeline {
 public:
  // Every node of `spec` must name a registered stage.
  static absl::StatusOr<Pipeline> FromSpec(const SpecPipeline& spec);
  static absl::StatusOr<Pipeline> FromSpec(absl::string_view spec);
  static absl::StatusOr<Pipeline> FromStages(std::vector<std::unique_ptr<Stage>> stages);

  Pipeline(Pipeline&&) = default;
  Pipeline& operator=(Pipeline&&) = default;

  std::string Spec() const;
  bool lossless() const;
  const std::vector<std::unique_ptr<Stage>>& stages() const { return stages_; }

  // Runs every stage and writes a complete, checksummed frame.
  absl::StatusOr<std::vector<uint8_t>> Encode(const TensorView& tensor) const;

 private:
  explicit Pipeline(std::vector<std::unique_ptr<Stage>> stages) : stages_(std::move(stages)) {}
  std::vector<std::unique_ptr<Stage>> stages_;
};

struct DecodeLimits {
  uint64_t max_decoded_bytes = uint64_t{1} << 36;  // checked before any allocation
};

// Decodes a whole frame: header, checksum, then stages in reverse.
absl::StatusOr<Tensor> DecodeFrame(absl::Span<const uint8_t> frame,
                                   const DecodeLimits& limits = {});

}  // namespace kvcomp

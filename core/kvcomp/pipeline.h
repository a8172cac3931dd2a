// A pipeline: a chain of stages applied to one tensor, and its frame encoding.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/kvcomp/frame.h"
#include "core/kvcomp/spec.h"
#include "core/kvcomp/stage.h"
#include "core/kvcomp/tensor.h"

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

  // Encode in two steps, for a caller that judges the error of a lossy first stage before it
  // pays for the rest (bounded's step search). EncodeBegin runs stage 0; when that stage is
  // lossy, measures its error while encoding (Stage::MeasuresWhileEncoding) and every later
  // stage is lossless, `error` holds the error the whole frame will decode with.
  struct Begun {
    std::vector<std::vector<StreamDesc>> plan;  // the descs before each stage, then after the last
    Streams streams;                            // stage 0's output
    std::optional<ErrorSums> error;
  };
  absl::StatusOr<Begun> EncodeBegin(const TensorView& tensor) const;
  absl::StatusOr<std::vector<uint8_t>> EncodeFinish(const TensorView& tensor, Begun begun) const;

 private:
  explicit Pipeline(std::vector<std::unique_ptr<Stage>> stages) : stages_(std::move(stages)) {}
  std::vector<std::unique_ptr<Stage>> stages_;
};

// stage.Plan(in), after the checks every plan goes through: quantised blocks only reach a stage
// that takes them (StageInfo::takes_blocks). Encoders and decoders plan with this.
absl::StatusOr<std::vector<StreamDesc>> PlanStage(const Stage& stage,
                                                  absl::Span<const StreamDesc> in);

struct DecodeLimits {
  uint64_t max_decoded_bytes = uint64_t{1} << 36;  // checked before any allocation
};

// Decodes a whole frame: header, checksum, then stages in reverse.
absl::StatusOr<Tensor> DecodeFrame(absl::Span<const uint8_t> frame,
                                   const DecodeLimits& limits = {});

// DecodeFrame into memory the caller provides: once the header is read and checked against
// `limits`, `buffer(meta)` is asked for exactly meta.NumBytes() writable bytes (a pinned host
// buffer, a reply's bytes field), and the tensor is decoded straight into them, with no copy
// and no zero-fill. Returns the tensor's meta; on an error the buffer's contents are undefined.
absl::StatusOr<TensorMeta> DecodeFrameInto(
    absl::Span<const uint8_t> frame,
    absl::FunctionRef<absl::Span<uint8_t>(const TensorMeta&)> buffer,
    const DecodeLimits& limits = {});

}  // namespace kvcomp

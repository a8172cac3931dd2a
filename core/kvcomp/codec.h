// The embeddable entry point: compress a tensor with any spec, decompress any frame.
//
//   KV_ASSIGN_OR_RETURN(auto codec, kvcomp::MakeCodec("zstd(3)"));
//   KV_ASSIGN_OR_RETURN(auto view, kvcomp::TensorView::Make(meta, bytes));
//   KV_ASSIGN_OR_RETURN(auto out, codec->Compress(view));   // out.frame, out.report
//   KV_ASSIGN_OR_RETURN(kvcomp::Tensor back, kvcomp::Decompress(out.frame));
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "kvcomp/error_metrics.h"
#include "kvcomp/pipeline.h"
#include "kvcomp/tensor.h"

namespace kvcomp {

// What happened to one tensor. Sizes count every header, table and checksum byte.
struct TensorReport {
  TensorMeta meta;
  uint64_t raw_bytes = 0;
  uint64_t compressed_bytes = 0;
  std::string spec;  // the concrete pipeline written into the frame
  // This tensor decodes bit-exact: a lossless pipeline, or a lossy one that was exact on it
  // (cast of data already FP16). Otherwise `error` holds what decoding really gives back.
  bool lossless = true;
  std::optional<ErrorStats> error;  // measured on the decoded tensor when lossy
  double ratio() const {
    return compressed_bytes ? static_cast<double>(raw_bytes) / compressed_bytes : 0.0;
  }
};

struct CompressedTensor {
  std::vector<uint8_t> frame;
  TensorReport report;
};

// A resolved spec: a pipeline, or (later) a preset or policy that picks one per tensor.
// Thread-safe and reusable across calls.
class Codec {
 public:
  virtual ~Codec() = default;
  virtual std::string Spec() const = 0;
  virtual absl::StatusOr<CompressedTensor> Compress(const TensorView& tensor) const = 0;
};

// INVALID_ARGUMENT names the bad token when the spec does not parse or resolve.
absl::StatusOr<std::unique_ptr<Codec>> MakeCodec(absl::string_view spec);

// Compresses with a concrete pipeline and fills in the report (decoding lossy frames once to
// measure their error).
absl::StatusOr<CompressedTensor> CompressWith(const Pipeline& pipeline, const TensorView& tensor);

inline absl::StatusOr<Tensor> Decompress(absl::Span<const uint8_t> frame,
                                         const DecodeLimits& limits = {}) {
  return DecodeFrame(frame, limits);
}

}  // namespace kvcomp

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

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/kvcomp/error_metrics.h"
#include "core/kvcomp/pipeline.h"
#include "core/kvcomp/tensor.h"

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

// A resolved spec: a pipeline, or a preset or policy (presets/) that picks one per tensor.
// Thread-safe and reusable across calls.
class Codec {
 public:
  virtual ~Codec() = default;
  virtual std::string Spec() const = 0;
  virtual absl::StatusOr<CompressedTensor> Compress(const TensorView& tensor) const = 0;
};

// INVALID_ARGUMENT names the bad token when the spec does not parse or resolve.
absl::StatusOr<std::unique_ptr<Codec>> MakeCodec(absl::string_view spec);

// Compresses with a concrete pipeline and fills in the report. A lossy result carries the error
// a reader will get back: decoded and measured, or computed while encoding when the pipeline's
// lossy first stage can (Stage::MeasuresWhileEncoding).
absl::StatusOr<CompressedTensor> CompressWith(const Pipeline& pipeline, const TensorView& tensor);

// CompressWith, for a caller with bounds to meet: `accept` sees a lossy result's error, as soon
// as it is known (before the entropy coders run, when the first stage measures it), and when it
// says no, nothing more is done and the result is nullopt. Bit-exact results are accepted.
absl::StatusOr<std::optional<CompressedTensor>> CompressIf(
    const Pipeline& pipeline, const TensorView& tensor,
    absl::FunctionRef<bool(const ErrorStats&)> accept);

inline absl::StatusOr<Tensor> Decompress(absl::Span<const uint8_t> frame,
                                         const DecodeLimits& limits = {}) {
  return DecodeFrame(frame, limits);
}

// Decompress into the caller's memory: `buffer(meta)` returns meta.NumBytes() writable bytes
// once the frame's header is checked; see DecodeFrameInto.
inline absl::StatusOr<TensorMeta> DecompressInto(
    absl::Span<const uint8_t> frame,
    absl::FunctionRef<absl::Span<uint8_t>(const TensorMeta&)> buffer,
    const DecodeLimits& limits = {}) {
  return DecodeFrameInto(frame, buffer, limits);
}

}  // namespace kvcomp

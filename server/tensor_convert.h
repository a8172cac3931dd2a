// Conversions between the wire messages (kvcomp.v1) and the codec core, and from
// absl::Status to grpc::Status. No I/O and no gRPC server machinery: pure functions.
#pragma once

#include <string>

#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kvcomp/codec.h"
#include "kvcomp/tensor.h"
#include "kvcomp/v1/kvcomp.pb.h"

namespace kvcomp::server {

// Reads datatype, kind, layout, layer and shape. INVALID_ARGUMENT names the bad field.
absl::StatusOr<TensorMeta> MetaFromProto(const v1::Tensor& tensor);

// A validated view over `tensor.raw_contents()`; `tensor` must outlive the view.
// INVALID_ARGUMENT names expected and received byte counts when they disagree.
absl::StatusOr<TensorView> ViewFromProto(const v1::Tensor& tensor);

// Fills `out` from a decoded tensor; `name` is echoed back from the request.
void TensorToProto(const Tensor& tensor, absl::string_view name, v1::Tensor* out);
// Every field of `out` but its bytes (which the decoder writes into raw_contents in place).
void MetaToProto(const TensorMeta& meta, absl::string_view name, v1::Tensor* out);

// Fills the per-tensor report. Timings are left to the caller.
void ReportToProto(const TensorReport& report, absl::string_view name, v1::TensorReport* out);

void ErrorToProto(const ErrorStats& error, v1::ErrorMetrics* out);

v1::TensorKind KindToProto(Kind kind);
v1::TensorLayout LayoutToProto(Layout layout);

// The same error with "`context`: " in front of its message.
absl::Status Annotate(const absl::Status& status, absl::string_view context);

// absl::StatusCode values equal gRPC's, so the code maps one to one. Caller strings are quoted
// bounded where messages are made (kvcomp/quote.h); as a last guard, a message longer than
// kMaxStatusMessageBytes is cut, so that it always fits gRPC's default 8 KiB metadata limit.
inline constexpr size_t kMaxStatusMessageBytes = 2048;
grpc::Status ToGrpcStatus(const absl::Status& status);

// How an input tensor is named in error messages: "tensor 3 ('layer1_v')".
std::string TensorLabel(int index, absl::string_view name);

}  // namespace kvcomp::server

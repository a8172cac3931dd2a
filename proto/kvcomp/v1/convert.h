// Conversions between the wire messages (kvcomp.v1, kvcomp.proto) and the codec core's types:
// one copy, linked by the server and the client alike (kvcomp_proto_convert), so that both
// read a message the same way. Pure functions: no gRPC, no I/O. core/ knows nothing of them.
//
// Readers refuse what they cannot represent: an unknown kind, layout or datatype is
// INVALID_ARGUMENT naming the field and its value, never a default.
#pragma once

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/kvcomp/catalogue.h"
#include "core/kvcomp/codec.h"
#include "core/kvcomp/error_metrics.h"
#include "core/kvcomp/tensor.h"
#include "kvcomp/v1/kvcomp.pb.h"

namespace kvcomp::proto {

// "unknown tensor kind 7", "unknown tensor layout 9", "unknown datatype 'FP8' (expected ...)".
absl::StatusOr<Kind> KindFromProto(int kind);
absl::StatusOr<Layout> LayoutFromProto(int layout);
absl::StatusOr<DType> DTypeFromProto(absl::string_view datatype);
v1::TensorKind KindToProto(Kind kind);
v1::TensorLayout LayoutToProto(Layout layout);

// Reads datatype, kind, layout, layer and shape. INVALID_ARGUMENT names the bad field.
absl::StatusOr<TensorMeta> MetaFromProto(const v1::Tensor& tensor);
// A validated view over `tensor.raw_contents()`; `tensor` must outlive the view.
// INVALID_ARGUMENT names expected and received byte counts when they disagree.
absl::StatusOr<TensorView> ViewFromProto(const v1::Tensor& tensor);
// Every field of `out` but its bytes, token_offset and total_tokens.
void MetaToProto(const TensorMeta& meta, absl::string_view name, v1::Tensor* out);
// MetaToProto, and the bytes.
void TensorToProto(const Tensor& tensor, absl::string_view name, v1::Tensor* out);

// The per-tensor report; ratio is derived from the sizes. Timings are left to the caller.
void ReportToProto(const TensorReport& report, absl::string_view name, v1::TensorReport* out);
// Layer, kind, datatype and shape (the layout is not in a report: head-major), sizes, codec,
// lossless, and the error of a lossy report. Name, ratio and timings are the caller's.
absl::StatusOr<TensorReport> ReportFromProto(const v1::TensorReport& report);
void ErrorToProto(const ErrorStats& error, v1::ErrorMetrics* out);
// The seven measured fields; count and mismatched_nonfinite are not on the wire (0).
ErrorStats ErrorFromProto(const v1::ErrorMetrics& error);

// A codec catalogue entry (ListCodecs), both ways.
void CatalogueEntryToProto(const CatalogueEntry& entry, v1::CodecInfo* out);
CatalogueEntry CatalogueEntryFromProto(const v1::CodecInfo& info);

}  // namespace kvcomp::proto

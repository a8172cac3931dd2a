#include "server/tensor_convert.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "kvcomp/quote.h"

namespace kvcomp::server {
namespace {

absl::StatusOr<Kind> KindFromProto(int kind) {
  switch (kind) {
    case v1::TENSOR_KIND_UNSPECIFIED:
      return Kind::kUnspecified;
    case v1::TENSOR_KIND_K:
      return Kind::kKey;
    case v1::TENSOR_KIND_V:
      return Kind::kValue;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown tensor kind ", kind));
}

absl::StatusOr<Layout> LayoutFromProto(int layout) {
  switch (layout) {
    case v1::TENSOR_LAYOUT_HEAD_MAJOR:
      return Layout::kHeadMajor;
    case v1::TENSOR_LAYOUT_TOKEN_MAJOR:
      return Layout::kTokenMajor;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown tensor layout ", layout));
}

}  // namespace

absl::StatusOr<TensorMeta> MetaFromProto(const v1::Tensor& tensor) {
  TensorMeta meta;
  absl::StatusOr<DType> dtype = ParseDType(tensor.datatype());
  if (!dtype.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("unknown datatype ", Quote(tensor.datatype()),
                                                   " (expected FP32, FP16, BF16, Q8_0 or Q4_0)"));
  }
  meta.dtype = *dtype;
  absl::StatusOr<Kind> kind = KindFromProto(tensor.kind());
  if (!kind.ok()) return kind.status();
  meta.kind = *kind;
  absl::StatusOr<Layout> layout = LayoutFromProto(tensor.layout());
  if (!layout.ok()) return layout.status();
  meta.layout = *layout;
  meta.layer = tensor.layer();
  meta.shape.assign(tensor.shape().begin(), tensor.shape().end());
  return meta;
}

absl::StatusOr<TensorView> ViewFromProto(const v1::Tensor& tensor) {
  absl::StatusOr<TensorMeta> meta = MetaFromProto(tensor);
  if (!meta.ok()) return meta.status();
  const std::string& raw = tensor.raw_contents();
  return TensorView::Make(
      std::move(*meta),
      absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(raw.data()), raw.size()));
}

v1::TensorKind KindToProto(Kind kind) {
  switch (kind) {
    case Kind::kKey:
      return v1::TENSOR_KIND_K;
    case Kind::kValue:
      return v1::TENSOR_KIND_V;
    case Kind::kUnspecified:
      break;
  }
  return v1::TENSOR_KIND_UNSPECIFIED;
}

v1::TensorLayout LayoutToProto(Layout layout) {
  return layout == Layout::kTokenMajor ? v1::TENSOR_LAYOUT_TOKEN_MAJOR
                                       : v1::TENSOR_LAYOUT_HEAD_MAJOR;
}

void MetaToProto(const TensorMeta& meta, absl::string_view name, v1::Tensor* out) {
  out->set_name(std::string(name));
  out->set_layer(meta.layer);
  out->set_kind(KindToProto(meta.kind));
  out->set_datatype(std::string(DTypeName(meta.dtype)));
  for (int64_t dim : meta.shape) out->add_shape(dim);
  out->set_layout(LayoutToProto(meta.layout));
}

void TensorToProto(const Tensor& tensor, absl::string_view name, v1::Tensor* out) {
  MetaToProto(tensor.meta, name, out);
  out->set_raw_contents(tensor.bytes.data(), tensor.bytes.size());
}

void ReportToProto(const TensorReport& report, absl::string_view name, v1::TensorReport* out) {
  out->set_name(std::string(name));
  out->set_layer(report.meta.layer);
  out->set_kind(KindToProto(report.meta.kind));
  out->set_datatype(std::string(DTypeName(report.meta.dtype)));
  for (int64_t dim : report.meta.shape) out->add_shape(dim);
  out->set_raw_bytes(report.raw_bytes);
  out->set_compressed_bytes(report.compressed_bytes);
  out->set_ratio(report.ratio());
  out->set_codec(report.spec);
  out->set_lossless(report.lossless);
  if (!report.lossless && report.error.has_value()) {
    ErrorToProto(*report.error, out->mutable_error());
  }
}

void ErrorToProto(const ErrorStats& e, v1::ErrorMetrics* out) {
  out->set_mae(e.mae);
  out->set_rel_mae(e.rel_mae);
  out->set_max_abs(e.max_abs);
  out->set_rmse(e.rmse);
  out->set_rel_rmse(e.rel_rmse);
  out->set_cosine(e.cosine);
  out->set_snr_db(e.snr_db);
}

absl::Status Annotate(const absl::Status& status, absl::string_view context) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(context, ": ", status.message()));
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  absl::string_view message = status.message();
  std::string cut;
  if (message.size() > kMaxStatusMessageBytes) {
    cut = absl::StrCat(message.substr(0, kMaxStatusMessageBytes), "... (message cut at ",
                       kMaxStatusMessageBytes, " of ", message.size(), " bytes)");
    message = cut;
  }
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(message));
}

std::string TensorLabel(int index, absl::string_view name) {
  if (name.empty()) return absl::StrCat("tensor ", index);
  return absl::StrCat("tensor ", index, " (", Quote(name), ")");
}

}  // namespace kvcomp::server

#include "proto/kvcomp/v1/convert.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/types/span.h"

namespace kvcomp::proto {

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

// ParseDType's message already names the value and the datatypes expected.
absl::StatusOr<DType> DTypeFromProto(absl::string_view datatype) { return ParseDType(datatype); }

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

absl::StatusOr<TensorMeta> MetaFromProto(const v1::Tensor& tensor) {
  TensorMeta meta;
  absl::StatusOr<DType> dtype = DTypeFromProto(tensor.datatype());
  if (!dtype.ok()) return dtype.status();
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

absl::StatusOr<TensorReport> ReportFromProto(const v1::TensorReport& report) {
  TensorReport out;
  absl::StatusOr<DType> dtype = DTypeFromProto(report.datatype());
  if (!dtype.ok()) return dtype.status();
  out.meta.dtype = *dtype;
  absl::StatusOr<Kind> kind = KindFromProto(report.kind());
  if (!kind.ok()) return kind.status();
  out.meta.kind = *kind;
  out.meta.layer = report.layer();
  out.meta.shape.assign(report.shape().begin(), report.shape().end());
  out.raw_bytes = report.raw_bytes();
  out.compressed_bytes = report.compressed_bytes();
  out.spec = report.codec();
  out.lossless = report.lossless();
  if (!report.lossless() && report.has_error()) out.error = ErrorFromProto(report.error());
  return out;
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

ErrorStats ErrorFromProto(const v1::ErrorMetrics& e) {
  ErrorStats out;
  out.mae = e.mae();
  out.rel_mae = e.rel_mae();
  out.max_abs = e.max_abs();
  out.rmse = e.rmse();
  out.rel_rmse = e.rel_rmse();
  out.cosine = e.cosine();
  out.snr_db = e.snr_db();
  return out;
}

void CatalogueEntryToProto(const CatalogueEntry& e, v1::CodecInfo* out) {
  out->set_kind(e.kind);
  out->set_name(e.name);
  out->set_id(e.id);
  out->set_summary(e.summary);
  out->set_exactness(e.exactness);
  out->set_usage(e.usage);
  out->set_takes_blocks(e.takes_blocks);
  for (const CatalogueParam& p : e.params) {
    v1::CodecParam* q = out->add_params();
    q->set_name(p.name);
    q->set_type(p.type);
    q->set_default_value(p.default_value);
    q->set_min(p.min);
    q->set_max(p.max);
    for (const std::string& choice : p.choices) q->add_choices(choice);
    q->set_help(p.help);
  }
}

CatalogueEntry CatalogueEntryFromProto(const v1::CodecInfo& c) {
  CatalogueEntry e{.kind = c.kind(),
                   .name = c.name(),
                   .id = c.id(),
                   .summary = c.summary(),
                   .exactness = c.exactness(),
                   .usage = c.usage(),
                   .takes_blocks = c.takes_blocks()};
  for (const v1::CodecParam& p : c.params()) {
    e.params.push_back(CatalogueParam{.name = p.name(),
                                      .type = p.type(),
                                      .default_value = p.default_value(),
                                      .min = p.min(),
                                      .max = p.max(),
                                      .choices = {p.choices().begin(), p.choices().end()},
                                      .help = p.help()});
  }
  return e;
}

}  // namespace kvcomp::proto

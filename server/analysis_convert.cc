#include "server/analysis_convert.h"

#include <map>
#include <string>
#include <utility>

#include "proto/kvcomp/v1/convert.h"

namespace kvcomp::server {
namespace {

// The request name of each analysed tensor. Without layer sampling the analysed tensors are
// the request's, in order; with it, a subset, found again by (layer, kind).
class TensorNames {
 public:
  explicit TensorNames(const google::protobuf::RepeatedPtrField<v1::Tensor>& tensors)
      : tensors_(tensors) {
    for (const v1::Tensor& t : tensors) {
      by_layer_kind_.emplace(std::make_pair(t.layer(), static_cast<int>(t.kind())), t.name());
    }
  }
  std::string NameOf(size_t index, size_t analysed, const TensorMeta& meta) const {
    if (analysed == static_cast<size_t>(tensors_.size())) {
      return tensors_[static_cast<int>(index)].name();
    }
    auto it = by_layer_kind_.find({meta.layer, static_cast<int>(proto::KindToProto(meta.kind))});
    return it == by_layer_kind_.end() ? std::string() : it->second;
  }

 private:
  const google::protobuf::RepeatedPtrField<v1::Tensor>& tensors_;
  std::map<std::pair<int32_t, int>, std::string> by_layer_kind_;  // first of each pair wins
};

void ConfigToProto(const ConfigResult& c, const TensorNames& names, v1::CodecAnalysis* out) {
  out->set_codec(c.spec);
  for (size_t i = 0; i < c.tensors.size(); ++i) {
    const TensorResult& r = c.tensors[i];
    v1::TensorReport* report = out->add_reports();
    proto::ReportToProto(r.report, names.NameOf(i, c.tensors.size(), r.report.meta), report);
    report->set_compress_seconds(r.compress_seconds);
    report->set_decompress_seconds(r.decompress_seconds);
  }
  v1::Totals* totals = out->mutable_totals();
  totals->set_raw_bytes(c.raw_k + c.raw_v);
  totals->set_compressed_bytes(c.packed_k + c.packed_v);
  totals->set_ratio(c.ratio());
  out->set_ratio_k(c.ratio_k());
  out->set_ratio_v(c.ratio_v());
  if (!c.lossless) {
    proto::ErrorToProto(c.worst_k.AsStats(), out->mutable_worst_k());
    proto::ErrorToProto(c.worst_v.AsStats(), out->mutable_worst_v());
  }
  out->set_lossless(c.lossless);
  out->set_passes(c.passes);
  out->set_verdict(c.verdict);
  out->set_error(c.error);
  out->set_compress_seconds(c.compress_seconds);
  out->set_decompress_seconds(c.decompress_seconds);
}

}  // namespace

ErrorBounds BoundsFromProto(const v1::ErrorThresholds& t) {
  ErrorBounds b;
  if (t.has_cosine()) b.cosine = t.cosine().value();
  if (t.has_mae()) b.mae = t.mae().value();
  if (t.has_rel_mae()) b.rel_mae = t.rel_mae().value();
  if (t.has_max_abs()) b.max_abs = t.max_abs().value();
  if (t.has_rel_rmse()) b.rel_rmse = t.rel_rmse().value();
  if (t.has_snr_db()) b.snr_db = t.snr_db().value();
  return b;
}

AnalysisOptions AnalysisOptionsFromProto(const v1::AnalyzeRequest& request) {
  AnalysisOptions o;
  o.specs.assign(request.codecs().begin(), request.codecs().end());
  o.sweeps.assign(request.sweeps().begin(), request.sweeps().end());
  o.k_bounds = BoundsFromProto(request.k_thresholds());
  o.v_bounds = BoundsFromProto(request.v_thresholds());
  if (request.has_budget_bytes()) o.budget_bytes = request.budget_bytes().value();
  o.max_tokens = request.max_tokens();
  o.max_layers = request.max_layers();
  if (request.has_rope_theta()) o.rope_theta = request.rope_theta().value();
  if (!request.rope_pairs().empty()) o.rope_pairs = request.rope_pairs();
  return o;
}

void AnalysisToProto(const AnalysisReport& report,
                     const google::protobuf::RepeatedPtrField<v1::Tensor>& tensors,
                     v1::AnalyzeResponse* out) {
  const TensorNames names(tensors);
  for (const ConfigResult& c : report.configs) ConfigToProto(c, names, out->add_codecs());
  v1::Recommendation* rec = out->mutable_recommendation();
  rec->set_found(report.recommendation.found);
  rec->set_codec(report.recommendation.spec);
  rec->set_ratio(report.recommendation.ratio);
  rec->set_why(report.recommendation.why);
  for (const auto& [spec, why] : report.recommendation.runners_up) {
    v1::RunnerUp* r = rec->add_runners_up();
    r->set_codec(spec);
    r->set_why(why);
  }
  out->set_sampling(report.sampling);
  out->set_analysed_raw_bytes(report.analysed_raw_bytes);
  out->set_full_raw_bytes(report.full_raw_bytes);
  if (report.rope.has_value()) {
    v1::RopeCheck* rope = out->mutable_rope();
    rope->set_ratio_native(report.rope->ratio_native);
    rope->set_ratio_inverse(report.rope->ratio_inverse);
    rope->set_mean_abs_change(report.rope->mean_abs_change);
  }
}

}  // namespace kvcomp::server

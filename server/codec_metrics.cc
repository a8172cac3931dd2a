#include "server/codec_metrics.h"

namespace kvcomp::server {
namespace {

const prometheus::Histogram::BucketBoundaries& RatioBuckets() {
  static const auto* buckets = new prometheus::Histogram::BucketBoundaries{
      0.5, 0.75, 0.9, 1.0, 1.1, 1.25, 1.5, 2, 2.5, 3, 4, 6, 8, 12, 16, 32};
  return *buckets;
}

const prometheus::Histogram::BucketBoundaries& SecondsBuckets() {
  static const auto* buckets = new prometheus::Histogram::BucketBoundaries{
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  return *buckets;
}

// Cosine similarity close to 1: buckets by the number of nines.
const prometheus::Histogram::BucketBoundaries& CosineBuckets() {
  static const auto* buckets = new prometheus::Histogram::BucketBoundaries{
      0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999, 0.99999, 0.999999};
  return *buckets;
}

const prometheus::Histogram::BucketBoundaries& RelMaeBuckets() {
  static const auto* buckets = new prometheus::Histogram::BucketBoundaries{
      1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1};
  return *buckets;
}

}  // namespace

CodecMetrics::CodecMetrics(prometheus::Registry& registry)
    : bytes_in_(prometheus::BuildCounter()
                    .Name("kvcomp_codec_bytes_in_total")
                    .Help("Raw tensor bytes compressed, by codec family and dtype.")
                    .Register(registry)),
      bytes_out_(prometheus::BuildCounter()
                     .Name("kvcomp_codec_bytes_out_total")
                     .Help("Frame bytes produced (every header counted), by codec family and "
                           "dtype.")
                     .Register(registry)),
      ratio_(prometheus::BuildHistogram()
                 .Name("kvcomp_codec_ratio")
                 .Help("Compression ratio (raw / frame bytes) per tensor.")
                 .Register(registry)),
      seconds_(prometheus::BuildHistogram()
                   .Name("kvcomp_codec_seconds")
                   .Help("Time to encode one tensor (including the lossy error measurement).")
                   .Register(registry)),
      cosine_(prometheus::BuildHistogram()
                  .Name("kvcomp_codec_error_cosine")
                  .Help("Cosine similarity of the decoded tensor to the input, lossy codecs only.")
                  .Register(registry)),
      rel_mae_(prometheus::BuildHistogram()
                   .Name("kvcomp_codec_error_rel_mae")
                   .Help("Relative MAE (mae / mean |x|) of the decoded tensor, lossy codecs only.")
                   .Register(registry)) {}

CodecMetrics::Series& CodecMetrics::SeriesFor(absl::string_view family, DType dtype) {
  std::lock_guard<std::mutex> lock(mu_);
  auto key = std::make_pair(std::string(family), dtype);
  auto it = series_.find(key);
  if (it != series_.end()) return it->second;
  const prometheus::Labels labels{{"codec", key.first}, {"dtype", std::string(DTypeName(dtype))}};
  Series series{&bytes_in_.Add(labels),
                &bytes_out_.Add(labels),
                &ratio_.Add(labels, RatioBuckets()),
                &seconds_.Add(labels, SecondsBuckets()),
                &cosine_.Add(labels, CosineBuckets()),
                &rel_mae_.Add(labels, RelMaeBuckets())};
  return series_.emplace(std::move(key), series).first->second;
}

void CodecMetrics::OnCompressed(absl::string_view family, const TensorReport& report,
                                double seconds) {
  const uint64_t raw_bytes = report.raw_bytes;
  const uint64_t compressed_bytes = report.compressed_bytes;
  Series& s = SeriesFor(family, report.meta.dtype);
  s.seconds->Observe(seconds);
  if (!report.lossless && report.error.has_value()) {
    s.cosine->Observe(report.error->cosine);
    s.rel_mae->Observe(report.error->rel_mae);
  }
  s.bytes_in->Increment(static_cast<double>(raw_bytes));
  s.bytes_out->Increment(static_cast<double>(compressed_bytes));
  if (compressed_bytes > 0) {
    s.ratio->Observe(static_cast<double>(raw_bytes) / static_cast<double>(compressed_bytes));
  }
}

}  // namespace kvcomp::server

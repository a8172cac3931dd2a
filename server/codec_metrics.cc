#include "server/codec_metrics.h"

namespace kvcomp::server {
namespace {

const prometheus::Histogram::BucketBoundaries& RatioBuckets() {
  static const auto* buckets = new prometheus::Histogram::BucketBoundaries{
      0.5, 0.75, 0.9, 1.0, 1.1, 1.25, 1.5, 2, 2.5, 3, 4, 6, 8, 12, 16, 32};
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
                 .Register(registry)) {}

CodecMetrics::Series& CodecMetrics::SeriesFor(absl::string_view family, DType dtype) {
  std::lock_guard<std::mutex> lock(mu_);
  auto key = std::make_pair(std::string(family), dtype);
  auto it = series_.find(key);
  if (it != series_.end()) return it->second;
  const prometheus::Labels labels{{"codec", key.first}, {"dtype", std::string(DTypeName(dtype))}};
  Series series{&bytes_in_.Add(labels), &bytes_out_.Add(labels),
                &ratio_.Add(labels, RatioBuckets())};
  return series_.emplace(std::move(key), series).first->second;
}

void CodecMetrics::OnCompressed(absl::string_view family, DType dtype, uint64_t raw_bytes,
                                uint64_t compressed_bytes) {
  Series& s = SeriesFor(family, dtype);
  s.bytes_in->Increment(static_cast<double>(raw_bytes));
  s.bytes_out->Increment(static_cast<double>(compressed_bytes));
  if (compressed_bytes > 0) {
    s.ratio->Observe(static_cast<double>(raw_bytes) / static_cast<double>(compressed_bytes));
  }
}

}  // namespace kvcomp::server

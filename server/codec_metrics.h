// Codec metrics on a prometheus registry: bytes in and out, the compression ratio, encode
// seconds and, for lossy codecs, the cosine and relative MAE of the decoded tensor, labelled
// {codec, dtype} where codec is the spec's family (low cardinality, never per layer).
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <utility>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "server/kvcomp_ops.h"

namespace kvcomp::server {

class CodecMetrics final : public CodecObserver {
 public:
  // Registers the families; `registry` must outlive this object.
  explicit CodecMetrics(prometheus::Registry& registry);

  void OnCompressed(absl::string_view family, const TensorReport& report, double seconds) override;

 private:
  struct Series {
    prometheus::Counter* bytes_in;
    prometheus::Counter* bytes_out;
    prometheus::Histogram* ratio;
    prometheus::Histogram* seconds;
    prometheus::Histogram* cosine;
    prometheus::Histogram* rel_mae;
  };
  Series& SeriesFor(absl::string_view family, DType dtype);

  prometheus::Family<prometheus::Counter>& bytes_in_;
  prometheus::Family<prometheus::Counter>& bytes_out_;
  prometheus::Family<prometheus::Histogram>& ratio_;
  prometheus::Family<prometheus::Histogram>& seconds_;
  prometheus::Family<prometheus::Histogram>& cosine_;
  prometheus::Family<prometheus::Histogram>& rel_mae_;
  std::mutex mu_;
  std::map<std::pair<std::string, DType>, Series> series_;  // Family::Add is slow: cache
};

}  // namespace kvcomp::server

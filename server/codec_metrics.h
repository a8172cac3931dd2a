// Codec metrics on a prometheus registry: bytes in and out and the compression ratio, labelled
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

  void OnCompressed(absl::string_view family, DType dtype, uint64_t raw_bytes,
                    uint64_t compressed_bytes) override;

 private:
  struct Series {
    prometheus::Counter* bytes_in;
    prometheus::Counter* bytes_out;
    prometheus::Histogram* ratio;
  };
  Series& SeriesFor(absl::string_view family, DType dtype);

  prometheus::Family<prometheus::Counter>& bytes_in_;
  prometheus::Family<prometheus::Counter>& bytes_out_;
  prometheus::Family<prometheus::Histogram>& ratio_;
  std::mutex mu_;
  std::map<std::pair<std::string, DType>, Series> series_;  // Family::Add is slow: cache
};

}  // namespace kvcomp::server

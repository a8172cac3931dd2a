// Sampling a big cache for Analyze: evenly spaced layers, and per tensor a few evenly spaced
// contiguous token blocks (contiguous so that coders that look across tokens still see
// neighbours). Internal to analysis/.
#pragma once

#include <string>
#include <vector>

#include "core/kvcomp/tensor.h"

namespace kvcomp {

struct SampledCache {
  std::vector<Tensor> owned;      // token-sampled copies, when tokens were sampled
  std::vector<TensorView> views;  // what gets analysed
  std::vector<size_t> source;     // index of each view's tensor in the input cache
  std::string description;
  uint64_t full_raw_bytes = 0, analysed_raw_bytes = 0;
};

SampledCache SampleCache(absl::Span<const TensorView> cache, uint64_t max_tokens,
                         uint32_t max_layers);

}  // namespace kvcomp

#include "core/kvcomp/analysis/sampling.h"

#include <algorithm>
#include <cstring>
#include <set>

#include "absl/strings/str_cat.h"

namespace kvcomp {
namespace {

constexpr uint64_t kTokenBlocks = 4;

// Keeps rows [start, start + len) of each block, for every plane.
Tensor SliceTokens(const TensorView& t, const std::vector<std::pair<uint64_t, uint64_t>>& blocks) {
  const Geometry g = t.geometry();
  const size_t row_bytes = g.cols * DTypeSize(t.meta().dtype);
  uint64_t rows = 0;
  for (const auto& b : blocks) rows += b.second;
  Tensor out;
  out.meta = t.meta();
  out.meta.shape[TokenAxis(t.meta())] = static_cast<int64_t>(rows);
  out.bytes.reserve(g.planes * rows * row_bytes);
  for (uint64_t p = 0; p < g.planes; ++p) {
    for (const auto& [start, len] : blocks) {
      const uint8_t* src = t.bytes().data() + (p * g.rows + start) * row_bytes;
      out.bytes.insert(out.bytes.end(), src, src + len * row_bytes);
    }
  }
  return out;
}

}  // namespace

SampledCache SampleCache(absl::Span<const TensorView> cache, uint64_t max_tokens,
                         uint32_t max_layers) {
  SampledCache s;
  std::set<int32_t> layer_set;
  for (const auto& t : cache) layer_set.insert(t.meta().layer);
  std::vector<int32_t> layers(layer_set.begin(), layer_set.end());
  std::set<int32_t> keep(layers.begin(), layers.end());
  if (max_layers > 0 && layers.size() > max_layers) {
    keep.clear();
    for (uint32_t i = 0; i < max_layers; ++i) {
      keep.insert(layers[i * (layers.size() - 1) / std::max<uint32_t>(1, max_layers - 1)]);
    }
  }
  uint64_t max_rows = 0;
  bool sampled_tokens = false;
  for (size_t i = 0; i < cache.size(); ++i) {
    const TensorView& t = cache[i];
    s.full_raw_bytes += t.bytes().size();
    if (!keep.count(t.meta().layer)) continue;
    const uint64_t rows = t.geometry().rows;
    max_rows = std::max(max_rows, rows);
    s.source.push_back(i);
    if (max_tokens == 0 || rows <= max_tokens) {
      s.views.push_back(t);
      continue;
    }
    sampled_tokens = true;
    const uint64_t blocks = std::min(kTokenBlocks, max_tokens);
    std::vector<std::pair<uint64_t, uint64_t>> ranges;
    for (uint64_t b = 0; b < blocks; ++b) {
      const uint64_t len = max_tokens / blocks + (b < max_tokens % blocks ? 1 : 0);
      const uint64_t start = b * (rows - len) / std::max<uint64_t>(1, blocks - 1);
      ranges.emplace_back(std::min(start, rows - len), len);
    }
    s.owned.push_back(SliceTokens(t, ranges));
  }
  // Views into `owned` are taken only now that the vector no longer reallocates.
  size_t owned = 0;
  std::vector<TensorView> views;
  for (size_t i = 0, direct = 0; i < s.source.size(); ++i) {
    const TensorView& t = cache[s.source[i]];
    const bool sliced = max_tokens > 0 && t.geometry().rows > max_tokens;
    views.push_back(sliced ? s.owned[owned++].view() : s.views[direct++]);
  }
  s.views = std::move(views);
  for (const auto& v : s.views) s.analysed_raw_bytes += v.bytes().size();
  s.description = absl::StrCat(keep.size(), " of ", layers.size(), " layers");
  absl::StrAppend(&s.description,
                  sampled_tokens ? absl::StrCat(", ", max_tokens, " of ", max_rows, " tokens in ",
                                                kTokenBlocks, " evenly spaced blocks")
                                 : ", all tokens");
  absl::StrAppend(&s.description, " (", s.analysed_raw_bytes, " of ", s.full_raw_bytes,
                  " bytes analysed)");
  return s;
}

}  // namespace kvcomp

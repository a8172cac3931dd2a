#include "core/kvcomp/token_blocks.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"

namespace kvcomp {
namespace {

// Copies tokens [offset, offset + count) of every plane between a whole tensor and a block;
// `to_block` picks the direction.
void CopyTokens(const TensorMeta& meta, uint8_t* whole, uint64_t offset, uint64_t count,
                uint8_t* block, bool to_block) {
  const Geometry g = GeometryOf(meta);
  const uint64_t row = g.cols * DTypeSize(meta.dtype);
  const uint64_t n = count * row;
  if (n == 0) return;
  for (uint64_t p = 0; p < g.planes; ++p) {
    uint8_t* w = whole + (p * g.rows + offset) * row;
    uint8_t* b = block + p * n;
    if (to_block) {
      std::memcpy(b, w, n);
    } else {
      std::memcpy(w, b, n);
    }
  }
}

}  // namespace

TensorMeta TokenBlockMeta(const TensorMeta& whole, uint64_t count) {
  TensorMeta block = whole;
  if (!block.shape.empty()) block.shape[TokenAxis(block)] = static_cast<int64_t>(count);
  return block;
}

uint64_t TokenBytes(const TensorMeta& meta) {
  const Geometry g = GeometryOf(meta);
  return g.planes * g.cols * DTypeSize(meta.dtype);
}

bool TokensContiguous(const TensorMeta& meta) { return GeometryOf(meta).planes == 1; }

void GatherTokens(const TensorMeta& meta, const uint8_t* whole, uint64_t offset, uint64_t count,
                  uint8_t* block) {
  CopyTokens(meta, const_cast<uint8_t*>(whole), offset, count, block, /*to_block=*/true);
}

void ScatterTokens(const TensorMeta& meta, uint8_t* whole, uint64_t offset, uint64_t count,
                   const uint8_t* block) {
  CopyTokens(meta, whole, offset, count, const_cast<uint8_t*>(block), /*to_block=*/false);
}

TensorReport MergeBlockReports(absl::Span<const TensorReport> blocks, const TensorMeta& whole) {
  TensorReport out;
  out.meta = whole;
  std::vector<std::string> specs;
  for (const TensorReport& b : blocks) {
    out.raw_bytes += b.raw_bytes;
    out.compressed_bytes += b.compressed_bytes;
    out.lossless = out.lossless && b.lossless;
    if (std::find(specs.begin(), specs.end(), b.spec) == specs.end()) specs.push_back(b.spec);
  }
  out.spec = absl::StrJoin(specs, ", ");
  if (out.lossless) return out;
  ErrorStats e;
  e.snr_db = std::numeric_limits<double>::infinity();
  double mae = 0, squares = 0;
  for (const TensorReport& b : blocks) {
    const double w = out.raw_bytes ? static_cast<double>(b.raw_bytes) / out.raw_bytes : 0;
    // A block that came out exact has no error: it adds nothing and lowers no worst case.
    if (!b.error.has_value()) continue;
    const ErrorStats& x = *b.error;
    e.count += x.count;
    mae += w * x.mae;
    squares += w * x.rmse * x.rmse;
    e.max_abs = std::max(e.max_abs, x.max_abs);
    e.rel_mae = std::max(e.rel_mae, x.rel_mae);
    e.rel_rmse = std::max(e.rel_rmse, x.rel_rmse);
    e.cosine = std::min(e.cosine, x.cosine);
    e.snr_db = std::min(e.snr_db, x.snr_db);
    e.mismatched_nonfinite += x.mismatched_nonfinite;
  }
  e.mae = mae;
  e.rmse = std::sqrt(squares);
  out.error = e;
  return out;
}

}  // namespace kvcomp

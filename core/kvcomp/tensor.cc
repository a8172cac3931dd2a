#include "core/kvcomp/tensor.h"

#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace kvcomp {

absl::string_view LayoutName(Layout layout) {
  return layout == Layout::kTokenMajor ? "token-major" : "head-major";
}

absl::string_view KindName(Kind kind) {
  switch (kind) {
    case Kind::kKey:
      return "K";
    case Kind::kValue:
      return "V";
    case Kind::kUnspecified:
      break;
  }
  return "?";
}

absl::Status TensorMeta::Validate() const {
  if (shape.empty() || shape.size() > kMaxRank) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor rank ", shape.size(), " is out of range 1..", kMaxRank));
  }
  if (layer < -1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "layer ", layer, " is out of range (-1: not part of a layered cache; else 0 and up)"));
  }
  if (layout == Layout::kTokenMajor && shape.size() < 2) {
    return absl::InvalidArgumentError("token-major layout needs a rank of at least 2");
  }
  // Element counts stay below 2^56 so that byte counts and every derived size fit in 64 bits.
  // The bound is on the product of the non-zero dims: an empty tensor's other dims still size
  // derived tables (quant's per-channel groups), which must not overflow or be huge either
  // (found by fuzz_stage_decode: tests/fuzz/regressions/stage_decode/quant-*).
  constexpr uint64_t kMaxElements = uint64_t{1} << 56;
  uint64_t elements = 1;
  for (int64_t d : shape) {
    if (d < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor shape ", ShapeString(), " has a negative dimension"));
    }
    if (d == 0) continue;
    if (elements > kMaxElements / static_cast<uint64_t>(d)) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor shape ", ShapeString(), " has too many elements"));
    }
    elements *= static_cast<uint64_t>(d);
  }
  return absl::OkStatus();
}

uint64_t TensorMeta::NumElements() const {
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

uint64_t TensorMeta::NumBytes() const { return NumElements() * DTypeSize(dtype); }

std::string TensorMeta::ShapeString() const {
  return absl::StrCat("[", absl::StrJoin(shape, ","), "]");
}

size_t TokenAxis(const TensorMeta& m) {
  return m.shape.size() <= 1 || m.layout == Layout::kTokenMajor ? 0 : m.shape.size() - 2;
}

bool SameTensorApartFromTokens(const TensorMeta& a, const TensorMeta& b) {
  if (a.dtype != b.dtype || a.layout != b.layout || a.layer != b.layer || a.kind != b.kind ||
      a.shape.size() != b.shape.size()) {
    return false;
  }
  const size_t axis = TokenAxis(a);
  for (size_t i = 0; i < a.shape.size(); ++i) {
    if (i != axis && a.shape[i] != b.shape[i]) return false;
  }
  return true;
}

Geometry GeometryOf(const TensorMeta& meta) {
  Geometry g;
  const auto& s = meta.shape;
  const size_t r = s.size();
  if (r == 1) {
    g.rows = static_cast<uint64_t>(s[0]);
    return g;
  }
  if (meta.layout == Layout::kTokenMajor) {
    g.rows = static_cast<uint64_t>(s[0]);
    g.cols = 1;
    for (size_t i = 1; i < r; ++i) g.cols *= static_cast<uint64_t>(s[i]);
    return g;
  }
  for (size_t i = 0; i + 2 < r; ++i) g.planes *= static_cast<uint64_t>(s[i]);
  g.rows = static_cast<uint64_t>(s[r - 2]);
  g.cols = static_cast<uint64_t>(s[r - 1]);
  return g;
}

absl::StatusOr<TensorView> TensorView::Make(TensorMeta meta, absl::Span<const uint8_t> bytes) {
  if (absl::Status s = meta.Validate(); !s.ok()) return s;
  const uint64_t expected = meta.NumBytes();
  if (bytes.size() != expected) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor data is ", bytes.size(), " bytes but shape ", meta.ShapeString(),
                     " x ", DTypeName(meta.dtype), " needs ", expected, " bytes"));
  }
  return TensorView(std::move(meta), bytes);
}

TensorView Tensor::view() const { return *TensorView::Make(meta, bytes); }

}  // namespace kvcomp

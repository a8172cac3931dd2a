// A KV tensor: metadata plus a non-owning, validated view of its raw little-endian bytes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/kvcomp/dtype.h"

namespace kvcomp {

// Persistent: written into frames.
enum class Layout : uint8_t {
  kHeadMajor = 1,   // [heads, tokens, head_dim]
  kTokenMajor = 2,  // [tokens, heads, head_dim]
};

// Persistent: written into frames.
enum class Kind : uint8_t {
  kUnspecified = 0,
  kKey = 1,
  kValue = 2,
};

absl::string_view LayoutName(Layout layout);
absl::string_view KindName(Kind kind);  // "K", "V" or "?"

// Hard ceiling on rank; real KV tensors have rank 3.
inline constexpr size_t kMaxRank = 8;

struct TensorMeta {
  DType dtype = DType::kFP16;
  Layout layout = Layout::kHeadMajor;
  Kind kind = Kind::kUnspecified;
  int32_t layer = -1;  // -1: not part of a layered cache
  std::vector<int64_t> shape;

  // Validates rank, non-negative dims and overflow.
  absl::Status Validate() const;
  uint64_t NumElements() const;  // requires Validate().ok()
  uint64_t NumBytes() const;
  std::string ShapeString() const;  // "[4,512,8]"
};

// How codecs see a tensor: `planes` independent matrices of `rows` tokens x `cols` channels.
// Head-major [H,T,D] is H planes of T x D; token-major [T,H,D] is one plane of T x (H*D).
// A value's context channel is plane * cols + col, so channels never mix across heads.
struct Geometry {
  uint64_t planes = 1;
  uint64_t rows = 0;
  uint64_t cols = 1;
  uint64_t size() const { return planes * rows * cols; }
  uint64_t channels() const { return planes * cols; }
  bool operator==(const Geometry& o) const {
    return planes == o.planes && rows == o.rows && cols == o.cols;
  }
};
Geometry GeometryOf(const TensorMeta& meta);
// The shape axis of the tokens (GeometryOf's rows): 0 for token-major and rank-0/1 tensors,
// rank - 2 for head-major ones.
size_t TokenAxis(const TensorMeta& meta);
// True when `a` and `b` can be token blocks of one tensor: the same everything but the token
// count.
bool SameTensorApartFromTokens(const TensorMeta& a, const TensorMeta& b);

class TensorView {
 public:
  // Fails with INVALID_ARGUMENT naming expected and received sizes when the bytes do not
  // match shape x dtype.
  static absl::StatusOr<TensorView> Make(TensorMeta meta, absl::Span<const uint8_t> bytes);

  const TensorMeta& meta() const { return meta_; }
  absl::Span<const uint8_t> bytes() const { return bytes_; }
  Geometry geometry() const { return GeometryOf(meta_); }

 private:
  TensorView(TensorMeta meta, absl::Span<const uint8_t> bytes)
      : meta_(std::move(meta)), bytes_(bytes) {}
  TensorMeta meta_;
  absl::Span<const uint8_t> bytes_;
};

// An owning tensor, as returned by decompression.
struct Tensor {
  TensorMeta meta;
  std::vector<uint8_t> bytes;
  TensorView view() const;  // meta and bytes always agree
};

}  // namespace kvcomp

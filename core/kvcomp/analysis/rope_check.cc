#include "core/kvcomp/analysis/rope_check.h"

#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/kvcomp/internal/quote.h"
#include "core/kvcomp/internal/status_macros.h"

namespace kvcomp {
namespace {

Tensor InverseRope(const TensorView& t, double theta, bool interleaved, double* abs_change) {
  const Geometry g = t.geometry();
  const uint64_t head_dim = static_cast<uint64_t>(t.meta().shape.back());
  const uint64_t n = t.meta().NumElements();
  std::vector<float> x(n), y(n);
  ToFloat(t.meta().dtype, t.bytes().data(), x.data(), n);
  for (uint64_t p = 0; p < g.planes; ++p) {
    for (uint64_t r = 0; r < g.rows; ++r) {
      for (uint64_t c0 = 0; c0 < g.cols; c0 += head_dim) {  // token-major rows hold all heads
        float* in = x.data() + (p * g.rows + r) * g.cols + c0;
        float* out = y.data() + (p * g.rows + r) * g.cols + c0;
        for (uint64_t i = 0; i < head_dim / 2; ++i) {
          const uint64_t a = interleaved ? 2 * i : i,
                         b = interleaved ? 2 * i + 1 : i + head_dim / 2;
          const double freq = std::pow(theta, -2.0 * i / head_dim);
          const double angle = static_cast<double>(r) * freq;
          const double cs = std::cos(angle), sn = std::sin(angle);
          out[a] = static_cast<float>(in[a] * cs + in[b] * sn);
          out[b] = static_cast<float>(-in[a] * sn + in[b] * cs);
        }
        if (head_dim % 2) out[head_dim - 1] = in[head_dim - 1];
      }
    }
  }
  Tensor out;
  out.meta = t.meta();
  out.bytes.resize(t.bytes().size());
  for (uint64_t i = 0; i < n; ++i) {
    if (t.meta().dtype == DType::kFP32) {
      std::memcpy(&out.bytes[4 * i], &y[i], 4);
    } else {
      const uint16_t h =
          t.meta().dtype == DType::kFP16 ? FloatToHalfBits(y[i]) : FloatToBf16Bits(y[i]);
      std::memcpy(&out.bytes[2 * i], &h, 2);
    }
    *abs_change += std::fabs(double(y[i]) - x[i]);
  }
  return out;
}

// RoPE rotates pairs within each head's last axis, so a K tensor needs a head_dim axis apart
// from its token axis: rank 2 or more. A rank-1 tensor's rows are single elements, and
// rotating "head_dim" values from each wrote past the buffer (issue 25, finding 1).
absl::Status CheckRopeShape(const TensorMeta& meta) {
  const Geometry g = GeometryOf(meta);
  const uint64_t head_dim = static_cast<uint64_t>(meta.shape.back());
  if (meta.shape.size() < 2 || (head_dim > 0 && g.cols % head_dim != 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the RoPE check needs K tensors of rank 2 or more ([heads, tokens, head_dim] or [tokens, "
        "heads, head_dim]); layer ",
        meta.layer, " K has shape ", meta.ShapeString()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<RopeCheck> CheckInverseRope(absl::Span<const TensorView> keys, double theta,
                                           absl::string_view pairs) {
  if (pairs != "interleaved" && pairs != "half") {
    return absl::InvalidArgumentError(
        absl::StrCat("rope pairs must be 'interleaved' or 'half', got ", Quote(pairs)));
  }
  if (!(theta > 1)) return absl::InvalidArgumentError("rope theta must be > 1");
  KV_ASSIGN_OR_RETURN(auto codec, MakeCodec("zstd(3)"));
  RopeCheck check;
  uint64_t raw = 0, native = 0, inverse = 0, count = 0;
  double change = 0;
  for (const TensorView& k : keys) {
    // RoPE turns pairs of values: quantised blocks are not values.
    if (IsBlockQuantized(k.meta().dtype)) {
      return absl::InvalidArgumentError(absl::StrCat("the RoPE check needs float K tensors; layer ",
                                                     k.meta().layer, " K is ",
                                                     DTypeName(k.meta().dtype)));
    }
    KV_RETURN_IF_ERROR(CheckRopeShape(k.meta()));
    KV_ASSIGN_OR_RETURN(CompressedTensor a, codec->Compress(k));
    const Tensor undone = InverseRope(k, theta, pairs == "interleaved", &change);
    KV_ASSIGN_OR_RETURN(CompressedTensor b, codec->Compress(undone.view()));
    raw += k.bytes().size();
    native += a.frame.size();
    inverse += b.frame.size();
    count += k.meta().NumElements();
  }
  if (native == 0) return absl::InvalidArgumentError("no K tensors to check RoPE on");
  check.ratio_native = double(raw) / native;
  check.ratio_inverse = double(raw) / inverse;
  check.mean_abs_change = count ? change / count : 0;
  return check;
}

}  // namespace kvcomp

#include "kvcomp/stages/float_io.h"

#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace kvcomp {

bool IsFloatType(ElemType type) {
  return type == ElemType::kF16 || type == ElemType::kBF16 || type == ElemType::kF32;
}

absl::Status LoadFinite(absl::string_view stage, const Stream& in, std::vector<float>* out) {
  const size_t n = in.data().size() / ElemSize(in.desc().type);
  out->resize(n);
  const DType dtype = in.desc().type == ElemType::kF32   ? DType::kFP32
                      : in.desc().type == ElemType::kF16 ? DType::kFP16
                                                         : DType::kBF16;
  ToFloat(dtype, in.data().data(), out->data(), n);
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite((*out)[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat(stage, ": element ", i,
                       " is not finite; lossy codecs need finite "
                       "values (use a lossless codec for this tensor)"));
    }
  }
  return absl::OkStatus();
}

std::vector<uint8_t> StoreAs(ElemType type, const float* values, size_t count) {
  std::vector<uint8_t> out(count * ElemSize(type));
  // An empty tensor's buffers may be null, and memcpy from null is undefined even for 0 bytes
  // (found by fuzz_stage_decode: tests/fuzz/regressions/stage_decode/).
  if (count == 0) return out;
  if (type == ElemType::kF32) {
    std::memcpy(out.data(), values, out.size());
  } else {
    std::vector<uint16_t> half(count);
    if (type == ElemType::kF16) {
      FloatToHalf(values, half.data(), count);
    } else {
      FloatToBf16(values, half.data(), count);
    }
    std::memcpy(out.data(), half.data(), out.size());
  }
  return out;
}

}  // namespace kvcomp

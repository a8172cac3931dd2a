#include "core/kvcomp/stages/float_io.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/kvcomp/stages/stage_util.h"

namespace kvcomp {

DType FloatDType(ElemType type) {
  return type == ElemType::kF32   ? DType::kFP32
         : type == ElemType::kF16 ? DType::kFP16
                                  : DType::kBF16;
}

bool IsFloatType(ElemType type) {
  return type == ElemType::kF16 || type == ElemType::kBF16 || type == ElemType::kF32;
}

absl::StatusOr<size_t> FindFloatStream(absl::string_view stage, absl::Span<const StreamDesc> in) {
  size_t found = in.size(), floats = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    if (!in[i].opaque() && IsFloatType(in[i].type)) {
      ++floats;
      found = i;
    }
  }
  if (floats != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        stage, " takes one float stream (other streams beside it pass through); put it first"));
  }
  return found;
}

size_t FloatStreamIndex(absl::Span<const StreamDesc> in) {
  for (size_t i = 0; i < in.size(); ++i) {
    if (!in[i].opaque() && IsFloatType(in[i].type)) return i;
  }
  return 0;
}

size_t FloatStreamIndex(const Streams& in) {
  for (size_t i = 0; i < in.size(); ++i) {
    if (!in[i].desc().opaque() && IsFloatType(in[i].desc().type)) return i;
  }
  return 0;
}

std::vector<StreamDesc> AppendOthers(std::vector<StreamDesc> own, absl::Span<const StreamDesc> in) {
  const size_t f = FloatStreamIndex(in);
  for (size_t i = 0; i < in.size(); ++i) {
    if (i != f) own.push_back(in[i]);
  }
  return own;
}

void PassOthers(const Streams& in, Streams* out) {
  const size_t f = FloatStreamIndex(in);
  for (size_t i = 0; i < in.size(); ++i) {
    if (i != f) out->push_back(stage_util::PassThrough(in[i]));
  }
}

absl::Status RestoreOthers(absl::string_view stage, const Streams& encoded, size_t own,
                           absl::Span<const StreamDesc> want, Streams* decoded) {
  if (want.size() <= 1) return absl::OkStatus();
  if (decoded->size() != 1 || encoded.size() != own + want.size() - 1) {
    return stage_util::Corrupt(stage, "stream count");
  }
  const size_t f = FloatStreamIndex(want);
  Stream value = std::move(decoded->front());
  decoded->clear();
  size_t k = own;
  for (size_t i = 0; i < want.size(); ++i) {
    decoded->push_back(i == f ? std::move(value) : stage_util::PassThrough(encoded[k++]));
  }
  return absl::OkStatus();
}

absl::Status ForEachFiniteChunk(absl::string_view stage, DType dtype,
                                absl::Span<const uint8_t> bytes,
                                const std::function<void(size_t, size_t, const float*)>& fn) {
  const size_t es = DTypeSize(dtype);
  const size_t n = bytes.size() / es;
  float chunk[kFloatChunk];
  for (size_t first = 0; first < n; first += kFloatChunk) {
    const size_t m = std::min(kFloatChunk, n - first);
    if (!ToFloatIfFinite(dtype, bytes.data() + first * es, chunk, m)) {
      ToFloat(dtype, bytes.data() + first * es, chunk, m);  // to find which one
      const size_t bad = static_cast<size_t>(
          std::find_if(chunk, chunk + m, [](float v) { return !std::isfinite(v); }) - chunk);
      return absl::InvalidArgumentError(
          absl::StrCat(stage, ": element ", first + bad,
                       " is not finite; lossy codecs need finite "
                       "values (use a lossless codec for this tensor)"));
    }
    fn(first, m, chunk);
  }
  return absl::OkStatus();
}

absl::Status ForEachFiniteChunk(absl::string_view stage, const Stream& in,
                                const std::function<void(size_t, size_t, const float*)>& fn) {
  return ForEachFiniteChunk(stage, FloatDType(in.desc().type), in.data(), fn);
}

absl::Status LoadFinite(absl::string_view stage, const Stream& in, std::vector<float>* out) {
  out->resize(in.data().size() / ElemSize(in.desc().type));
  return ForEachFiniteChunk(stage, in, [out](size_t first, size_t m, const float* x) {
    std::memcpy(out->data() + first, x, m * sizeof(float));
  });
}

void NarrowChunk(ElemType type, const float* chunk, size_t m, uint8_t* out) {
  if (type == ElemType::kF32) {
    std::memcpy(out, chunk, m * 4);
    return;
  }
  const auto narrow = type == ElemType::kF16 ? FloatToHalf : FloatToBf16;
  if (reinterpret_cast<uintptr_t>(out) % alignof(uint16_t) == 0) {
    narrow(chunk, reinterpret_cast<uint16_t*>(out), m);  // the usual case: no second copy
    return;
  }
  uint16_t half[kFloatChunk];
  narrow(chunk, half, m);
  std::memcpy(out, half, m * 2);
}

Stream StoreAs(const StreamDesc& desc, absl::Span<uint8_t> into, const float* values) {
  return StoreChunked(desc, into, [values](size_t first, size_t m, float* dst) {
    std::memcpy(dst, values + first, m * 4);
  });
}

}  // namespace kvcomp

#include "core/kvcomp/stream.h"

namespace kvcomp {

size_t ElemSize(ElemType type) {
  switch (type) {
    case ElemType::kOpaque:
    case ElemType::kU8:
      return 1;
    case ElemType::kU16:
    case ElemType::kF16:
    case ElemType::kBF16:
      return 2;
    case ElemType::kU32:
    case ElemType::kF32:
      return 4;
    case ElemType::kQ8_0:
      return 34;
    case ElemType::kQ4_0:
      return 18;
  }
  return 1;
}

bool IsBlockElem(ElemType type) { return type == ElemType::kQ8_0 || type == ElemType::kQ4_0; }

absl::string_view ElemTypeName(ElemType type) {
  switch (type) {
    case ElemType::kOpaque:
      return "bytes";
    case ElemType::kU8:
      return "u8";
    case ElemType::kU16:
      return "u16";
    case ElemType::kU32:
      return "u32";
    case ElemType::kF16:
      return "f16";
    case ElemType::kBF16:
      return "bf16";
    case ElemType::kF32:
      return "f32";
    case ElemType::kQ8_0:
      return "q8_0";
    case ElemType::kQ4_0:
      return "q4_0";
  }
  return "?";
}

ElemType ElemTypeOf(DType dtype) {
  switch (dtype) {
    case DType::kFP32:
      return ElemType::kF32;
    case DType::kFP16:
      return ElemType::kF16;
    case DType::kBF16:
      return ElemType::kBF16;
    case DType::kQ8_0:
      return ElemType::kQ8_0;
    case DType::kQ4_0:
      return ElemType::kQ4_0;
  }
  return ElemType::kOpaque;
}

Stream Stream::Borrow(StreamDesc desc, absl::Span<const uint8_t> bytes) {
  Stream s;
  s.desc_ = desc;
  s.data_ = bytes;
  return s;
}

Stream Stream::Own(StreamDesc desc, std::vector<uint8_t> bytes) {
  Stream s;
  s.desc_ = desc;
  s.storage_ = std::move(bytes);
  s.data_ = absl::MakeConstSpan(s.storage_);
  return s;
}

Stream Stream::Output(StreamDesc desc, absl::Span<uint8_t> into, uint8_t** out) {
  if (!into.empty() && into.size() == desc.bytes()) {
    *out = into.data();
    return Borrow(desc, into);
  }
  Stream s = Allocate(desc, desc.bytes());
  *out = s.mutable_data();
  return s;
}

Stream Stream::Allocate(StreamDesc desc, size_t bytes) {
  Stream s;
  s.desc_ = desc;
  s.block_.reset(new uint8_t[bytes]);
  s.data_ = absl::MakeConstSpan(s.block_.get(), bytes);
  return s;
}

}  // namespace kvcomp

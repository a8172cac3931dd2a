// Streams: the typed buffers that flow between the stages of a pipeline.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/kvcomp/dtype.h"
#include "core/kvcomp/tensor.h"

namespace kvcomp {

// Not persistent: stream types are derived, never written into frames.
enum class ElemType : uint8_t {
  kOpaque,  // variable-length bytes, e.g. the output of an entropy coder
  kU8,
  kU16,
  kU32,
  kF16,
  kBF16,
  kF32,
  // ggml's quantised blocks (DType kQ8_0 / kQ4_0): one element is a block of 32 values. Only
  // stages whose StageInfo says takes_blocks accept them (zstd, and qsplit, which splits them
  // into scales and quants for the other coders).
  kQ8_0,
  kQ4_0,
};

size_t ElemSize(ElemType type);  // 1 for kOpaque (a byte count)
bool IsBlockElem(ElemType type);
absl::string_view ElemTypeName(ElemType type);
ElemType ElemTypeOf(DType dtype);

struct StreamDesc {
  ElemType type = ElemType::kOpaque;
  Geometry geom;  // element layout; for kOpaque, geom.size() is unused
  bool opaque() const { return type == ElemType::kOpaque; }
  uint64_t bytes() const { return geom.size() * ElemSize(type); }  // typed streams only
};

// A stream either borrows bytes (the caller's tensor) or owns them. `data` is always valid.
class Stream {
 public:
  Stream() = default;
  static Stream Borrow(StreamDesc desc, absl::Span<const uint8_t> bytes);
  static Stream Own(StreamDesc desc, std::vector<uint8_t> bytes);
  // `bytes` new bytes, not zeroed, for a decoder to fill through mutable_data(): zeroing
  // buffers the decoder overwrites anyway cost about a tenth of a fast decode.
  static Stream Allocate(StreamDesc desc, size_t bytes);
  // The stream a decoder writes a typed `desc` into: `into` itself when it is desc.bytes() long
  // (the caller's buffer), or Allocate()d bytes; *out is where to write them.
  static Stream Output(StreamDesc desc, absl::Span<uint8_t> into, uint8_t** out);

  Stream(Stream&&) = default;
  Stream& operator=(Stream&&) = default;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  const StreamDesc& desc() const { return desc_; }
  // The pipeline stamps every stream with the desc its plan derived, once its size is
  // checked, so stages can trust desc() (see Pipeline::Encode and DecodeFrame).
  void set_desc(const StreamDesc& desc) { desc_ = desc; }
  absl::Span<const uint8_t> data() const { return data_; }
  uint8_t* mutable_data() { return block_.get(); }  // Allocate()d streams only
  template <typename T>
  const T* as() const {
    return reinterpret_cast<const T*>(data_.data());
  }

 private:
  StreamDesc desc_;
  std::vector<uint8_t> storage_;
  std::unique_ptr<uint8_t[]> block_;  // Allocate()
  absl::Span<const uint8_t> data_;
};

using Streams = std::vector<Stream>;

}  // namespace kvcomp

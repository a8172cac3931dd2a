// Shared by the lossy stages: widen a float stream to f32 and narrow it back with IEEE
// rounding, so every quantiser works in one precision whatever the tensor's dtype.
#pragma once

#include <functional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/kvcomp/stream.h"

namespace kvcomp {

bool IsFloatType(ElemType type);
DType FloatDType(ElemType type);  // of a float stream type (F16/BF16/F32)

// Widens a F16/BF16/F32 stream. Lossy stages need finite input: NaN or infinity gives
// INVALID_ARGUMENT naming the stage, pointing the user to a lossless codec.
absl::Status LoadFinite(absl::string_view stage, const Stream& in, std::vector<float>* out);

// LoadFinite an L1-sized chunk at a time, for code that needs no tensor-sized float copy:
// `fn(first, m, x)` gets values [first, first + m), all finite. Over a float stream, or over
// `bytes` holding values of `dtype`.
absl::Status ForEachFiniteChunk(absl::string_view stage, const Stream& in,
                                const std::function<void(size_t, size_t, const float*)>& fn);
absl::Status ForEachFiniteChunk(absl::string_view stage, DType dtype,
                                absl::Span<const uint8_t> bytes,
                                const std::function<void(size_t, size_t, const float*)>& fn);

// Lossy stages code the one float stream among their inputs. Other streams beside it (side
// data of an earlier lossless stage, e.g. protect's exact rows or reorder's permutations) pass
// through unchanged, after the stage's own outputs and in their input order; decoding puts
// them back in place.
//
// The float stream's index, or INVALID_ARGUMENT naming `stage` unless `in` holds exactly one.
absl::StatusOr<size_t> FindFloatStream(absl::string_view stage, absl::Span<const StreamDesc> in);
// The first float stream's index, for inputs already checked by FindFloatStream.
size_t FloatStreamIndex(absl::Span<const StreamDesc> in);
size_t FloatStreamIndex(const Streams& in);
// Plan: the stage's own outputs `own`, then the inputs other than the float stream.
std::vector<StreamDesc> AppendOthers(std::vector<StreamDesc> own, absl::Span<const StreamDesc> in);
// Encode: appends copies of the inputs other than the float stream.
void PassOthers(const Streams& in, Streams* out);
// Decode: `decoded` holds the float stream alone; rebuilds `want`'s order with the streams
// that follow the stage's `own` outputs in `encoded`.
absl::Status RestoreOthers(absl::string_view stage, const Streams& encoded, size_t own,
                           absl::Span<const StreamDesc> want, Streams* decoded);

// Narrows the float values of a stream `desc` to its type (F16/BF16/F32) with round to nearest
// even, into `into` when it is given (its size, Stage::DecodeInto) or into new memory. They are
// made and narrowed an L1-sized chunk at a time: `fill(first, m, dst)` writes values
// [first, first + m) to dst. A decoder that makes its values this way needs no tensor-sized
// float buffer, whose page faults and zero-fill cost more than the decoding itself.
void NarrowChunk(ElemType type, const float* chunk, size_t m, uint8_t* out);
inline constexpr size_t kFloatChunk = 4096;
// The loop of StoreChunked: `count` values made by `fill` and narrowed to `type` at `out`.
template <typename Fill>
void NarrowChunked(ElemType type, size_t count, uint8_t* out, Fill fill) {
  const size_t es = ElemSize(type);
  float chunk[kFloatChunk];
  for (size_t i = 0; i < count; i += kFloatChunk) {
    const size_t m = count - i < kFloatChunk ? count - i : kFloatChunk;
    fill(i, m, chunk);
    NarrowChunk(type, chunk, m, out + i * es);
  }
}
template <typename Fill>
Stream StoreChunked(const StreamDesc& desc, absl::Span<uint8_t> into, Fill fill) {
  uint8_t* out;
  Stream s = Stream::Output(desc, into, &out);
  NarrowChunked(desc.type, desc.geom.size(), out, fill);
  return s;
}

// StoreChunked from values already in memory.
Stream StoreAs(const StreamDesc& desc, absl::Span<uint8_t> into, const float* values);

// Round to nearest, ties to even, for |v| < 2^22: adding and subtracting 1.5 x 2^23 leaves
// the rounded value (IEEE default rounding). Unlike nearbyint it inlines and vectorises.
// Requires no -ffast-math (which would fold the two operations away).
inline float RoundEven(float v) {
  constexpr float kMagic = 12582912.0f;
  return (v + kMagic) - kMagic;
}

// Zigzag mapping of signed codes to unsigned, small magnitudes to small numbers.
inline uint16_t ZigZag16(int32_t v) {
  return static_cast<uint16_t>((static_cast<uint32_t>(v) << 1) ^ static_cast<uint32_t>(v >> 31));
}
inline int32_t UnZigZag16(uint16_t u) {
  return static_cast<int32_t>(u >> 1) ^ -static_cast<int32_t>(u & 1);
}

}  // namespace kvcomp

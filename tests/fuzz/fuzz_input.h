// The structured inputs of the fuzz targets. Each is read from plain bytes, so that
// libFuzzer's mutations stay meaningful, and written back by the seed tool, so that real
// frames become seeds. Stages are chosen by persistent ID and parameters are mapped into
// their schema's range, so a checked-in input keeps its meaning as stages are added.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "core/kvcomp/frame.h"
#include "core/kvcomp/stream.h"
#include "core/kvcomp/tensor.h"

namespace kvcomp::fuzz {

// Reads front to back; once the input runs out every read yields zeros.
class InputReader {
 public:
  explicit InputReader(absl::Span<const uint8_t> data) : data_(data) {}
  size_t remaining() const { return data_.size() - pos_; }
  uint8_t U8();
  uint32_t U32();
  double F64();
  uint64_t Varint();                          // LEB128, at most 10 bytes
  absl::Span<const uint8_t> Bytes(size_t n);  // fewer when the input runs out
  std::string CString();                      // up to a NUL or the end
  absl::Span<const uint8_t> Rest() { return Bytes(remaining()); }

 private:
  absl::Span<const uint8_t> data_;
  size_t pos_ = 0;
};

// The inverse of InputReader, for the seed tool.
class InputWriter {
 public:
  void U8(uint8_t v) { out_.push_back(v); }
  void U32(uint32_t v);
  void F64(double v);
  void Varint(uint64_t v);
  void Bytes(absl::Span<const uint8_t> b) { out_.insert(out_.end(), b.begin(), b.end()); }
  void CString(const std::string& s);
  std::vector<uint8_t>& bytes() { return out_; }

 private:
  std::vector<uint8_t> out_;
};

// 1..3 stages: an ID byte each (an unknown ID picks a registered stage by position) and a
// value per parameter. Ints and enums always land in range; a float is a raw double (any
// value, to reach the range checks), a point on its range, or one of its ends.
std::vector<FrameStage> ReadStages(InputReader& in);
void WriteStages(const std::vector<FrameStage>& stages, InputWriter& out);

// dtype, layout, kind, layer, rank 1..4 and dims as varints (zero and huge dims included).
// The result may fail Validate(); callers treat that as one more input to reject.
TensorMeta ReadMeta(InputReader& in);
void WriteMeta(const TensorMeta& meta, InputWriter& out);

// The stream descriptions `stages` would write into a frame for `meta`, or an error when
// any stage refuses its parameters or inputs.
absl::StatusOr<std::vector<StreamDesc>> PlanFinalStreams(const TensorMeta& meta,
                                                         const std::vector<FrameStage>& stages);

// Payload streams: a typed stream takes exactly the bytes its description needs (zero padded
// when the input runs short, unless that is more than `max_typed_bytes`); an opaque stream
// is a varint length followed by its bytes.
std::vector<std::vector<uint8_t>> ReadStreams(InputReader& in, absl::Span<const StreamDesc> descs,
                                              uint64_t max_typed_bytes);
void WriteStreams(absl::Span<const StreamDesc> descs,
                  const std::vector<absl::Span<const uint8_t>>& streams, InputWriter& out);

// Stops the run: the fuzzers abort (libFuzzer then saves the input); the regression test
// installs a handler that throws, to name the input and go on with the next one.
using FailureHandler = void (*)(const std::string& what);
void SetFailureHandler(FailureHandler handler);
[[noreturn]] void Fail(const std::string& what);

// Fails the run when `cond` is false; the message (StrCat arguments) is built only then.
#define KV_FUZZ_CHECK(cond, ...)                                                                 \
  do {                                                                                           \
    if (!(cond)) ::kvcomp::fuzz::Fail(::absl::StrCat("check failed: " #cond ": ", __VA_ARGS__)); \
  } while (0)

}  // namespace kvcomp::fuzz

// A stage is one named, parameterised, invertible step of a pipeline: a transform
// (plane split, delta, quantisation, ...) or an entropy backend (zstd, rANS, ...).
//
// Adding a stage is one file plus two lines in stages/stage_list.cc (its Register function
// declared, then called): the file defines a Stage subclass and a `StageInfo` that gives its
// persistent ID, name, parameters and factory. The rest of the checklist (FORMAT.md, golden
// frame, tests, fuzz seeds) is at the end of docs/ARCHITECTURE.md.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/kvcomp/error_metrics.h"
#include "core/kvcomp/stream.h"

namespace kvcomp {

enum class ParamType : uint8_t {
  kInt,    // stored as a zigzag varint
  kFloat,  // stored as 8 bytes, IEEE double, little-endian
  kEnum,   // an index into `choices`, stored as a varint
};

struct ParamDef {
  absl::string_view name;
  ParamType type = ParamType::kInt;
  double default_value = 0;
  double min = 0;
  double max = 0;
  std::vector<absl::string_view> choices;  // kEnum only
  absl::string_view help;
};

class Stage;

// Formats one parameter value as the spec language writes it.
std::string FormatParamValue(const ParamDef& def, double value);

// Parameter values in schema order; ints and enum indices are held exactly in doubles.
using ParamValues = std::vector<double>;

struct StageInfo {
  uint8_t id = 0;  // persistent, see docs/FORMAT.md; 0 is never valid
  absl::string_view name;
  absl::string_view summary;
  bool lossless = true;
  // Accepts streams of quantised blocks (ElemType kQ8_0 / kQ4_0). The pipeline refuses them to
  // every other stage (PlanStage), so a stage that reads elements as words never sees them.
  bool takes_blocks = false;
  // False when its decoder checks structure in its own output that a lossy stage after it would
  // not keep (dedupe: exact zero padding rows). A pipeline puts such a stage after the lossy
  // ones (Pipeline::FromStages), so it never writes a frame it cannot decode.
  bool lossy_may_follow = true;
  std::vector<ParamDef> params;
  // Builds the stage from values already checked against `params`; usually MakeStage<T>.
  std::function<absl::StatusOr<std::unique_ptr<Stage>>(const StageInfo&, const ParamValues&)> make;
};

class Stage {
 public:
  Stage(const StageInfo& info, ParamValues values) : info_(info), values_(std::move(values)) {}
  virtual ~Stage() = default;

  const StageInfo& info() const { return info_; }
  const ParamValues& values() const { return values_; }
  bool lossless() const { return info_.lossless; }
  // Canonical spec, e.g. "zstd(3)"; parses back to an identical stage.
  std::string Spec() const;

  // ---- What every stage implements: Plan, DoEncode and DoDecode ----

  // The streams this stage emits for inputs shaped `in`, or INVALID_ARGUMENT when it
  // cannot take them. Decoding calls this too, so it must depend only on `in` and params.
  virtual absl::StatusOr<std::vector<StreamDesc>> Plan(absl::Span<const StreamDesc> in) const = 0;

  // ---- How callers run a stage (non-virtual: the stream checks live here, once) ----

  // Encodes `in` (streams matching the descs given to Plan) into `out`: DoEncode, then the
  // output is checked against Plan's result (stream count, and the size of every typed stream)
  // and each stream takes its planned desc. A stage that breaks its own plan is DATA_LOSS.
  absl::Status Encode(const Streams& in, Streams* out) const;
  // Encode, also summing into `error` the error the decoder will leave on the float stream
  // (only where MeasuresWhileEncoding(); see DoEncodeMeasuring).
  absl::Status EncodeMeasuring(const Streams& in, Streams* out, ErrorSums* error) const;

  // Inverts Encode. `want` are the input descs of the encode side; `decoded` must match them
  // exactly. Corrupt input yields DATA_LOSS or INVALID_ARGUMENT, never a crash.
  absl::Status Decode(const Streams& encoded, absl::Span<const StreamDesc> want,
                      Streams* decoded) const {
    return DecodeInto(encoded, want, {}, decoded);
  }
  // As Decode, with want[0] decoded into `into` (exactly its size) when `into` is not empty:
  // the pipeline hands its first stage the caller's tensor buffer. (*decoded)[0] then borrows
  // `into`.
  absl::Status DecodeInto(const Streams& encoded, absl::Span<const StreamDesc> want,
                          absl::Span<uint8_t> into, Streams* decoded) const;

  // ---- Optional fast paths: the defaults are correct, only slower. uquant and qhuff use them.

  // A lossy stage whose decoder is a pure function of its own outputs may measure, while it
  // encodes, the error that decoder will leave on its float stream (DoEncodeMeasuring), so
  // that bounded(...) need not decode to check a step.
  virtual bool MeasuresWhileEncoding() const { return false; }

  // Fused decoding of two neighbouring stages, so that the values between them are used while
  // they are still in cache (DecodeFrameInto): the later stage hands its stream 0 to `sink` as
  // it makes it, and an element-wise earlier stage turns each piece into its own output.
  //
  // `sink(first, count, bytes)` gets elements [first, first + count) of stream 0, in order,
  // each once, `bytes` pointing at element `first`.
  using ChunkSink = std::function<void(size_t first, size_t count, const uint8_t* bytes)>;
  // As Decode, but stream 0 goes to `sink` instead of `decoded`, which gets the others. The
  // default decodes it whole first; a stage that makes it front to back overrides this to hand
  // over each piece as it is finished, with no stream-sized buffer.
  virtual absl::Status DecodeStreaming(const Streams& encoded, absl::Span<const StreamDesc> want,
                                       const ChunkSink& sink, Streams* decoded) const;
  // True when this stage's decoder makes want[0] element by element, element i from element i
  // of encoded[0] alone, and `encoded` holds nothing else (uquant: code x step). DecodeElements
  // then decodes `count` elements from `in` (any alignment) to `out` (want[0]'s type), exactly as
  // DoDecode would.
  virtual bool DecodesElementwise() const { return false; }
  virtual void DecodeElements(const StreamDesc& want, const uint8_t* in, size_t count,
                              uint8_t* out) const {
    (void)want, (void)in, (void)count, (void)out;
  }

 protected:
  // Encode's work: `out` receives streams matching Plan's result (opaque outputs may have any
  // length). Required.
  virtual absl::Status DoEncode(const Streams& in, Streams* out) const = 0;
  // Optional, with MeasuresWhileEncoding(): DoEncode plus `error`, the sums over the float
  // stream computed with the decoder's own arithmetic on the codes emitted (what decoding and
  // MeasureError would give, to the rounding of float sums).
  virtual absl::Status DoEncodeMeasuring(const Streams& in, Streams* out, ErrorSums* error) const {
    (void)error;
    return DoEncode(in, out);
  }
  // Decode's work. A stage that builds want[0] in one place writes it into `into` when given
  // and returns a stream borrowing it; one that ignores `into` has its result copied there.
  // Required.
  virtual absl::Status DoDecode(const Streams& encoded, absl::Span<const StreamDesc> want,
                                absl::Span<uint8_t> into, Streams* decoded) const = 0;

 private:
  const StageInfo& info_;
  ParamValues values_;
};

// Checks a stage's output against what it planned: the stream count, and the size of every
// typed stream (DATA_LOSS naming the stage and `direction` otherwise); each stream then takes
// its planned desc. Stage::Encode runs it on every encode, the pipeline on every decode.
absl::Status CheckStageStreams(const Stage& stage, absl::string_view direction, Streams& got,
                               absl::Span<const StreamDesc> want);

// The usual StageInfo::make: a stage whose constructor is Stage's own.
template <typename T>
absl::StatusOr<std::unique_ptr<Stage>> MakeStage(const StageInfo& info, const ParamValues& v) {
  return std::make_unique<T>(info, v);
}

}  // namespace kvcomp

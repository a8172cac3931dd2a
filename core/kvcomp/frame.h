// The frame: one compressed tensor, versioned, self-describing and checksummed.
// The byte layout is specified in docs/FORMAT.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/kvcomp/stage.h"
#include "core/kvcomp/tensor.h"

namespace kvcomp {

inline constexpr char kFrameMagic[4] = {'K', 'V', 'C', 'F'};
inline constexpr uint8_t kFrameVersion = 1;
inline constexpr size_t kFrameChecksumBytes = 8;
inline constexpr size_t kMaxStages = 16;
inline constexpr size_t kMaxStreams = 64;

struct FrameStage {
  uint8_t id = 0;
  ParamValues values;
};

// Everything in a frame except the payload bytes.
struct FrameHeader {
  uint8_t version = kFrameVersion;
  TensorMeta meta;
  std::vector<FrameStage> stages;
  std::vector<uint64_t> stream_bytes;
};

// A parsed frame: header plus views of each payload stream inside the frame buffer.
struct ParsedFrame {
  FrameHeader header;
  uint64_t frame_bytes = 0;
  uint64_t checksum = 0;
  std::vector<absl::Span<const uint8_t>> streams;
};

// INVALID_ARGUMENT for a stage this build does not know: without its schema, its parameters'
// encoding (svarint or f64 each) is unknown, and no reader could parse the frame.
absl::StatusOr<std::vector<uint8_t>> WriteFrame(
    const FrameHeader& header, const std::vector<absl::Span<const uint8_t>>& streams);

// Verifies magic, version, length and checksum, then every field's range. Corruption gives
// DATA_LOSS; a well-formed frame this build cannot read (newer version, unknown stage) gives
// INVALID_ARGUMENT. `frame` may extend past this frame's end (a container).
absl::StatusOr<ParsedFrame> ParseFrame(absl::Span<const uint8_t> frame);

// Reads only the length field, to split a container of concatenated frames.
absl::StatusOr<uint64_t> PeekFrameLength(absl::Span<const uint8_t> data);

// Splits concatenated frames (a .kvc file, a stream) into individual frames.
absl::StatusOr<std::vector<absl::Span<const uint8_t>>> SplitFrames(absl::Span<const uint8_t> data);

// The container rule (docs/FORMAT.md, "Streams and token blocks"): a container holds no names,
// so the token blocks of a tensor are found by its (layer, kind). True for a layered K or V
// tensor, whose frames are grouped so; any other frame is a whole tensor of its own.
bool GroupedByLayerKind(const TensorMeta& meta);

// The tensors of a container whose frames (SplitFrames) are `frames`, each as the indices of
// its frames in token order: every frame of a layered K or V tensor with the same
// (layer, kind) is a block of it, in container order; any other frame is a whole tensor.
// Tensors are in the order of their first frame. Only the headers are read.
std::vector<std::vector<size_t>> TensorFrames(absl::Span<const ParsedFrame> frames);

}  // namespace kvcomp

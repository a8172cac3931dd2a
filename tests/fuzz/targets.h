// The fuzz targets, as plain functions: each libFuzzer binary wraps one (fuzz_main.cc) and the
// regression test replays checked-in inputs through all of them. A target returns normally
// on any input; a broken invariant calls Fail (fuzz_input.h), a memory error trips ASan.
#pragma once

#include <cstdint>

#include "absl/types/span.h"

namespace kvcomp::fuzz {

// Frame parser and container splitter: ParseFrame, SplitFrames and DecodeFrame on the bytes
// as given, then again with the length field and checksum repaired so mutations get past them.
void FuzzFrame(absl::Span<const uint8_t> data);

// Every decoder stage: a pipeline of registered stages and a tensor header read from the
// input, the rest fed as the payload streams of a real, correctly checksummed frame.
void FuzzStageDecode(absl::Span<const uint8_t> data);

// The spec language: ParseSpec, FormatSpec and MakeCodec, then the codec on small tensors.
void FuzzSpec(absl::Span<const uint8_t> data);

// Compress then decompress: a spec (text, or stages from the registry), a tensor header and
// its bytes. Lossless must be bit-exact; lossy must decode to exactly the reported error.
void FuzzRoundTrip(absl::Span<const uint8_t> data);

struct Target {
  const char* name;
  void (*run)(absl::Span<const uint8_t>);
};
inline constexpr Target kTargets[] = {
    {"frame", FuzzFrame},
    {"stage_decode", FuzzStageDecode},
    {"spec", FuzzSpec},
    {"roundtrip", FuzzRoundTrip},
};

// The decode limit the targets pass to DecodeFrame: far below libFuzzer's 2 GiB malloc limit,
// so a decoder that allocates beyond its tensor's own size is caught.
inline constexpr uint64_t kMaxDecodedBytes = uint64_t{1} << 24;

}  // namespace kvcomp::fuzz

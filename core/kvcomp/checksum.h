// The frame checksum: XXH3-64 over the frame's bytes. Every frame is hashed once when written
// and once when read, so on a large tensor the hash is a visible share of either direction.
#pragma once

#include <cstdint>

#include "absl/types/span.h"

namespace kvcomp {

uint64_t FrameChecksum(absl::Span<const uint8_t> bytes);

}  // namespace kvcomp

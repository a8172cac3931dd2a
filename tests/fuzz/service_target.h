// The gRPC service itself as a fuzz target: a real KVCompressorService in this process, behind
// an in-process channel (no port), driven by a program of calls read from the input. Built only
// when the server is (not core-only).
#pragma once

#include <cstdint>
#include <vector>

#include "absl/types/span.h"

namespace kvcomp::fuzz {

// Each input byte picks the next step: a unary Compress, Decompress or Analyze; a stream
// opened, fed a chunk, read, half-closed, cancelled or left idle past the server's idle
// timeout; or a call to a method that does not exist. Every call must end with a status its
// client can act on. After the program, every call still open is cancelled, and then every
// call slot must come back and the server must answer a probe: a stall shows as libFuzzer's
// -timeout, a slot held forever as a failed check (issue 25, findings 2 and 5).
void FuzzServiceSequence(absl::Span<const uint8_t> data);

// Seeds: programs that walk through each kind of step.
std::vector<std::vector<uint8_t>> ServiceSeeds();

}  // namespace kvcomp::fuzz

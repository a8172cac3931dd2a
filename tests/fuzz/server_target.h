// The server's request handling as a fuzz target: protobuf bytes fed to the same functions the
// gRPC service runs (server/kvcomp_ops.h). Built only when the server is (not core-only).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/types/span.h"

namespace kvcomp::fuzz {

// The first byte picks Compress, Decompress or Analyze; the rest is that request's protobuf
// encoding. Any parseable request gets OK or a client error code, never a crash; what
// Compress returns must Decompress back (bit-exact when lossless).
void FuzzServerRequest(absl::Span<const uint8_t> data);

// Seeds: real requests for each RPC, from real tensors and every example spec.
enum class Rpc : uint8_t { kCompress = 0, kDecompress = 1, kAnalyze = 2 };
std::vector<uint8_t> ServerInput(Rpc rpc, const std::string& request_bytes);

}  // namespace kvcomp::fuzz

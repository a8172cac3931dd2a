// The server's request handling as a fuzz target: protobuf bytes fed to the same functions the
// gRPC service runs (server/kvcomp_ops.h). Built only when the server is (not core-only).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/types/span.h"

namespace kvcomp::fuzz {

// The first byte picks Compress, Decompress or Analyze, and the rest is that request's
// protobuf encoding; or CompressStream or DecompressStream, and the rest is the stream's chunks,
// each a varint length and a request's encoding. Any parseable request gets OK or a client
// error code, never a crash; what Compress returns must Decompress back (bit-exact when
// lossless), chunk by chunk for a stream.
void FuzzServerRequest(absl::Span<const uint8_t> data);

// Seeds: real requests for each RPC, from real tensors and every example spec.
enum class Rpc : uint8_t {
  kCompress = 0,
  kDecompress = 1,
  kAnalyze = 2,
  kCompressStream = 3,
  kDecompressStream = 4,
};
inline constexpr int kRpcCount = 5;
std::vector<uint8_t> ServerInput(Rpc rpc, const std::string& request_bytes);
// A stream's input: each chunk a varint length and the request's encoding.
std::vector<uint8_t> StreamInput(Rpc rpc, const std::vector<std::string>& chunks);

}  // namespace kvcomp::fuzz

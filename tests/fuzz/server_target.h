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
//
// Requests may name shared-memory ranges (Tensor.shm, CompressedTensor.shm, output windows) in
// the caller's regions kFuzzRegions, each kFuzzRegionBytes long: the first holds the input's
// bytes repeated, the others zeros. Frames and tensors placed in a window must lie in it.
void FuzzServerRequest(absl::Span<const uint8_t> data);
inline constexpr const char* kFuzzRegions[] = {"a", "b"};
inline constexpr uint64_t kFuzzRegionBytes = 64 << 10;

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
// Inputs naming shared memory: tensors in region "a" (the input's own bytes), frames and
// tensors written to windows in "b", with and without token blocks; and each bound broken once
// (a range past the region or wrapping, an unknown region, a size unlike the shape, an output
// over an input, a window too small, bytes and a reference both).
std::vector<std::vector<uint8_t>> ShmSeeds();
// Calls so far that named shared memory and succeeded.
uint64_t ShmCallsServed();
// A stream's input: each chunk a varint length and the request's encoding.
std::vector<uint8_t> StreamInput(Rpc rpc, const std::vector<std::string>& chunks);

}  // namespace kvcomp::fuzz

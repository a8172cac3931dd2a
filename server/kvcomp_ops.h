// The RPCs as plain functions over the wire messages: no threads, no gRPC server.
// The callback service runs them on its worker pool; tests and fuzzers can call them directly.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/kvcomp/codec.h"
#include "core/kvcomp/dtype.h"
#include "core/kvcomp/parallel.h"
#include "core/kvcomp/pipeline.h"
#include "kvcomp/v1/kvcomp.pb.h"
#include "server/payload.h"
#include "server/shm_call.h"

namespace kvcomp::server {

// Told about every tensor Compress encodes. Implementations must be thread-safe.
class CodecObserver {
 public:
  virtual ~CodecObserver() = default;
  // `family` is CodecFamily() of the requested spec: low cardinality, fit for a metric label.
  // `seconds` is the encode time; `report.error` is set for lossy codecs.
  virtual void OnCompressed(absl::string_view family, const TensorReport& report,
                            double seconds) = 0;
};

struct OpsOptions {
  // Caps what one frame may decode to (Decompress, Analyze); checked before allocating.
  DecodeLimits decode_limits;
  // Largest tensor (elements) Compress and Analyze accept; 0: no limit.
  uint64_t max_tensor_elements = 0;
  CodecObserver* observer = nullptr;  // optional
  // Polled between tensors; when it returns true the call stops, with DEADLINE_EXCEEDED when
  // `past_deadline` says the call's deadline has passed, else CANCELLED (the client gave up).
  std::function<bool()> cancelled;
  std::function<bool()> past_deadline;
  // Threads one Compress or Decompress may use, its own included, and where the others run (the
  // server's worker pool): the tensors of a call, and the token blocks of a big tensor, are
  // spread over them (kvcomp/batch.h). The frames never depend on it.
  Parallelism parallelism;
  // Streams (server/raw_reply.h): give a big chunk's received bytes back to the system once it
  // is parsed, so that a stream holds about two chunks, not three.
  bool trim_after_parse = false;
  // Shared memory: the caller's regions (server/shm_call.h). Without sessions, tensors and frames
  // that name a region are refused (FAILED_PRECONDITION).
  ShmAccess shm;
};

// The codec family of a spec: the name of its first stage or preset ("zstd" for "zstd(3)",
// "gear" for "gear+delta+zstd(19)"), or "invalid" when the spec does not parse.
std::string CodecFamily(absl::string_view spec);

// Compresses every tensor with `request.codec()`; fills one report per tensor and the totals.
// Token offsets are echoed onto the frames (a streamed chunk is one call). With
// `request.block_tokens()`, a tensor of more tokens goes as token blocks of that many, its
// entry's frame their frames back to back and its report their merged one.
absl::Status RunCompress(const v1::CompressRequest& request, v1::CompressResponse* response,
                         const OpsOptions& options);
// RunCompress with each tensor's frame left out of its entry and appended to `frames`, in
// order, so that a caller can send the frames without copying them (server/raw_reply.h).
absl::Status RunCompressFrames(const v1::CompressRequest& request, v1::CompressResponse* response,
                               std::vector<Payload>* frames, const OpsOptions& options);

// Decodes every entry (one frame, or one tensor's token blocks' frames back to back); tensors
// come back with the metadata written in the frames and the request's names.
absl::Status RunDecompress(const v1::DecompressRequest& request, v1::DecompressResponse* response,
                           const OpsOptions& options);
// RunDecompress decoding each tensor into a new entry of `payloads` (never zero-filled first)
// instead of its raw_contents, for server/raw_reply.h like RunCompressFrames.
absl::Status RunDecompressPayloads(const v1::DecompressRequest& request,
                                   v1::DecompressResponse* response, std::vector<Payload>* payloads,
                                   const OpsOptions& options);

// Runs core's AnalyzeCache: every explicit spec and named sweep over every (sampled) tensor,
// judged against the thresholds and budget, with a recommendation. A bad spec or sweep fails
// the call; a configuration that fails on some tensor is reported in its `error` field.
absl::Status RunAnalyze(const v1::AnalyzeRequest& request, v1::AnalyzeResponse* response,
                        const OpsOptions& options);

// The codec catalogue (kvcomp/catalogue.h): every stage, preset and policy specs may name.
absl::Status RunListCodecs(const v1::ListCodecsRequest& request, v1::ListCodecsResponse* response,
                           const OpsOptions& options);

}  // namespace kvcomp::server

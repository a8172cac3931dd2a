// How the client cuts a Compress or Decompress into requests, and puts the answers together:
// the plan of a call, testable without a server (tests/client/chunking_test.cc).
//
// A call whose tensors fit under the stream threshold (EffectiveThreshold) is one request.
// Above it, the call streams, in chunks that each stay under the threshold: whole tensors
// grouped in order, and a tensor bigger than the threshold cut along its token axis into token
// blocks, each compressed into a frame of its own (docs/FORMAT.md, "Streams and token
// blocks"). Decompress splits each tensor's compressed form into its frames and concatenates
// the decoded blocks in token order. Internal to the client library: kvcomp_client.h is its
// interface.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "client/io/kv_tensor.h"
#include "client/kvcomp_client.h"
#include "kvcomp/v1/kvcomp.pb.h"

namespace kvcomp::client {

// The default chunk: a server holds about two chunks of a stream at once (server/raw_reply.h),
// so 32 MiB keeps any cache streamed with the defaults under ~90 MiB of server memory (256 MiB
// streamed: 86 MiB peak; with chunks at the server's 64 MiB message limit, 147). Well within
// kvcomp-server's default message limit (64 MiB).
inline constexpr int64_t kDefaultChunkBytes = int64_t{32} << 20;
// A tensor's metadata in a message (name, shape, datatype, report), counted generously.
inline constexpr uint64_t kPerTensorOverhead = 512;

// Room kept in a message for headers: 1/16 of it, at most 64 KiB.
int64_t HeaderRoom(int64_t message_bytes);

// The stream threshold: options.stream_threshold_bytes, or derived from max_message_bytes,
// capped at kDefaultChunkBytes (see ClientOptions::stream_threshold_bytes).
int64_t EffectiveThreshold(const ClientOptions& o);

// The most one tensor (or block) may cost in a message of max_message_bytes.
uint64_t HardLimit(const ClientOptions& o);

// A piece of a request: a whole item (tensor, or frame to decode) or tokens
// [offset, offset + count) of a tensor. `cost` is what it adds to a message.
struct Piece {
  size_t item = 0;
  int64_t offset = 0;
  int64_t count = -1;  // -1: the whole item
  uint64_t cost = 0;
  absl::Span<const uint8_t> frame;  // Decompress: the frame
};

// Consecutive pieces grouped into chunks whose summed cost stays within `budget` (a piece
// above it gets a chunk of its own).
std::vector<std::vector<Piece>> Pack(std::vector<Piece> pieces, uint64_t budget);

// Splits each tensor into pieces that fit `threshold`: whole, or token blocks (one token each
// at least, when one token fits `hard_limit`; else RESOURCE_EXHAUSTED). A malformed tensor
// goes whole: the server names what is wrong with it.
absl::StatusOr<std::vector<Piece>> CutTensors(absl::Span<const io::NamedTensor> tensors,
                                              uint64_t threshold, uint64_t hard_limit);

// Tokens [offset, offset + count) of `t` as a tensor of its own, with token_offset and
// total_tokens set.
void TokenBlockToProto(const io::NamedTensor& t, int64_t offset, int64_t count, v1::Tensor* out);

// Token blocks of one tensor, in token order, concatenated along the token axis.
// INVALID_ARGUMENT when they are not blocks of one tensor.
absl::StatusOr<io::NamedTensor> ConcatTokenBlocks(std::vector<io::NamedTensor> blocks);

// The reports of a tensor's token blocks as one report (see CompressedTensor::report): core's
// merge (kvcomp/token_blocks.h), with the seconds summed.
TensorReport MergeBlockReports(const std::vector<TensorReport>& blocks, const TensorMeta& whole);

// Compress as chunks of pieces: builds each chunk's request and assembles the answers. A call
// is Reset(), then Take()s the answer to each chunk in order (again from Reset() when it is
// retried), then gives its Result().
class CompressPlan {
 public:
  static absl::StatusOr<CompressPlan> Make(absl::Span<const io::NamedTensor> tensors,
                                           const ClientOptions& o);
  size_t chunks() const { return std::max<size_t>(chunks_.size(), 1); }
  v1::CompressRequest Request(size_t i, absl::string_view spec,
                              absl::Span<const io::NamedTensor> tensors) const;
  void Reset();
  // DATA_LOSS when the answer is not one of the request's: another tensor count, a block at
  // another token, or a report this client cannot read.
  absl::Status Take(size_t i, v1::CompressResponse& resp);
  CompressResult Result();

 private:
  std::vector<std::vector<Piece>> chunks_;
  std::vector<TensorMeta> metas_;
  std::vector<CompressedTensor> tensors_;
  std::vector<std::vector<TensorReport>> reports_;
  Totals totals_;
};

// Decompress as chunks of frames: each FrameRef is split into its frames (token blocks of one
// tensor, or one whole tensor); decoded blocks are concatenated back along the token axis.
// Used as CompressPlan is.
class DecompressPlan {
 public:
  // RESOURCE_EXHAUSTED for a frame, or the tensor it decodes to, too big for a message.
  static absl::StatusOr<DecompressPlan> Make(absl::Span<const FrameRef> refs,
                                             const ClientOptions& o);
  size_t chunks() const { return std::max<size_t>(chunks_.size(), 1); }
  v1::DecompressRequest Request(size_t i) const;
  void Reset();
  // DATA_LOSS when the answer is not one of the request's or holds a tensor this client cannot
  // read (FromProto).
  absl::Status Take(size_t i, v1::DecompressResponse& resp);
  io::KvCache Result() { return std::move(out_); }

 private:
  std::vector<std::vector<Piece>> chunks_;
  std::vector<std::string> names_;
  std::vector<size_t> frames_per_ref_;
  io::KvCache out_;
  std::vector<io::NamedTensor> pending_;
};

}  // namespace kvcomp::client

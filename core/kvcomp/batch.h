// A whole cache in one call: many tensors compressed or decoded on as many threads as the
// caller allows (by default one: the core starts no thread unless asked), and big tensors cut
// into token blocks so that one tensor is spread over threads too. The output depends on the
// tensors, the codec and `block_tokens`, never on the threads or their timing: every frame is
// the one Codec::Compress makes of its tensor or block, and results come back in input order.
//
//   kvcomp::BatchOptions options;
//   options.parallelism.threads = 8;
//   KV_ASSIGN_OR_RETURN(auto frames, kvcomp::CompressTensors(*codec, views, options));
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/kvcomp/codec.h"
#include "core/kvcomp/parallel.h"
#include "core/kvcomp/pipeline.h"

namespace kvcomp {

struct BatchOptions {
  Parallelism parallelism;
  // > 0: a tensor of more tokens is compressed as blocks of this many tokens (the last one
  // shorter), each its own frame; its compressed form is then the blocks' frames back to back
  // (the stream container of docs/FORMAT.md), its report their merged one (token_blocks.h).
  uint64_t block_tokens = 0;
  // The input bytes (tensors, frames), resp. the output memory, may be written by another
  // process during the call (shared memory): the codec then never works on them in place. Each
  // tensor or frame is first copied into the thread's own buffer, and each decoded tensor is
  // made there and then copied out, so that bytes changing underneath can only give a wrong
  // result (or a failed checksum), never an encoder or decoder that reads a value twice and
  // finds two different ones.
  bool shared_input = false;
  bool shared_output = false;
  // Polled before each tensor or block; a non-OK status (cancelled, past a deadline) stops the
  // call with that status.
  std::function<absl::Status()> check;
  // How tensor i is named in error messages (default "tensor i").
  std::function<std::string(size_t)> label;
  // DecompressTensors: what one frame may decode to, and one whole tensor (all its blocks). Both
  // are checked on the headers, before anything is decoded or any room is asked for.
  DecodeLimits limits;
  uint64_t max_tensor_bytes = uint64_t{1} << 36;
};

// Compresses every tensor with `codec`. `seconds`, when given, receives each tensor's encode
// time (its blocks' summed). On failure, the first failing tensor's error, in input order,
// prefixed with its label.
absl::StatusOr<std::vector<CompressedTensor>> CompressTensors(
    const Codec& codec, absl::Span<const TensorView> tensors, const BatchOptions& options = {},
    std::vector<double>* seconds = nullptr);

// Where DecompressTensors writes tensor `index` (the whole tensor, all its blocks):
// whole.NumBytes() bytes, or an error that ends the call. Asked once for each tensor, in input
// order, on the calling thread, after every frame of the tensors before it and of this one has
// parsed (checksums included) and before any is decoded.
using TensorDestination =
    absl::FunctionRef<absl::StatusOr<absl::Span<uint8_t>>(size_t index, const TensorMeta& whole)>;

// Decodes each item: one frame, or one tensor's token blocks' frames back to back in token
// order (what CompressTensors makes of a tensor in blocks, or a stream's frames of one tensor).
// Returns each tensor's meta. Errors: the first failing tensor's, in input order, prefixed with
// its label; an error of `into` as it is.
absl::StatusOr<std::vector<TensorMeta>> DecompressTensors(
    absl::Span<const absl::Span<const uint8_t>> items, TensorDestination into,
    const BatchOptions& options = {});

}  // namespace kvcomp

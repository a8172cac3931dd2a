// Token blocks: tokens [offset, offset + count) of a tensor, cut along its token axis and
// compressed as a tensor of their own (docs/FORMAT.md, "Streams and token blocks"). The client
// cuts caches into blocks for streams; CompressTensors (batch.h) cuts big tensors into blocks so
// that one tensor is spread over threads.
#pragma once

#include <cstdint>

#include "absl/types/span.h"
#include "core/kvcomp/codec.h"
#include "core/kvcomp/tensor.h"

namespace kvcomp {

// `whole` with `count` tokens on its token axis.
TensorMeta TokenBlockMeta(const TensorMeta& whole, uint64_t count);

// Bytes of one token, over every plane.
uint64_t TokenBytes(const TensorMeta& meta);

// True when any run of tokens of a tensor with this meta is one contiguous range of its bytes
// (token-major, or a single plane): a block is then a subspan, with nothing to copy.
bool TokensContiguous(const TensorMeta& meta);

// Copies tokens [offset, offset + count) of `whole` (laid out as `meta` says) into `block`
// (count tokens, packed as TokenBlockMeta(meta, count)), or back the other way.
void GatherTokens(const TensorMeta& meta, const uint8_t* whole, uint64_t offset, uint64_t count,
                  uint8_t* block);
void ScatterTokens(const TensorMeta& meta, uint8_t* whole, uint64_t offset, uint64_t count,
                   const uint8_t* block);

// The reports of one tensor's token blocks, in token order, as one report of `whole`: sizes
// summed; mae and rmse exact over the tensor (weighted by each block's bytes); max_abs the
// largest; rel_mae, rel_rmse, cosine and snr_db the worst block's (a bound, not the tensor's
// own figure); spec the blocks' distinct pipelines joined by ", ".
TensorReport MergeBlockReports(absl::Span<const TensorReport> blocks, const TensorMeta& whole);

}  // namespace kvcomp

// Token blocks of head-major tensors, as the streaming RPCs carry them.
#pragma once

#include <cstdint>
#include <string>

#include "kvcomp/v1/kvcomp.pb.h"

namespace kvcomp::testing {

// Tokens [offset, offset + count) of a head-major [heads, tokens, dim] tensor with
// `element_bytes`-byte elements, as a tensor of its own with token_offset and total_tokens set.
v1::Tensor TokenBlock(const v1::Tensor& whole, int64_t offset, int64_t count, int element_bytes);

// The same cut from raw bytes: `meta` gives name, layer, kind, datatype, shape and layout.
v1::Tensor TokenBlockOf(const v1::Tensor& meta, const uint8_t* bytes, int64_t offset, int64_t count,
                        int element_bytes);

// Pastes a decoded block back into `whole_bytes` (the whole tensor's raw contents, sized) at
// its token_offset. Returns false when the block does not fit.
bool PasteTokenBlock(const v1::Tensor& block, int64_t total_tokens, int element_bytes,
                     std::string* whole_bytes);

}  // namespace kvcomp::testing

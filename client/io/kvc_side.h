// Side records: the bytes of an engine's cache file that are not tensors, carried in a .kvc
// file ahead of its frames (docs/FORMAT.md, "Side records"). A .kvc made from a llama.cpp
// state holds one: the state's skeleton (io/llama_state.h), so that decompressing the .kvc
// gives the state file back. The server never sees them: it only ever gets tensors.
//
//   magic 'K' 'V' 'C' 'S' | version u8 (1) | length u64 (the whole record) | source u8 |
//   coding u8 (0 stored, 1 zstd) | varint raw length | payload | XXH3-64 of all before it
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace kvcomp::io {

// Persistent: written into side records.
enum class SideSource : uint8_t {
  kLlamaState = 1,  // a llama.cpp sequence-state skeleton
};

struct SideRecord {
  SideSource source = SideSource::kLlamaState;
  std::vector<uint8_t> bytes;  // as the source gave them (decoded)
};

// The record, its payload zstd-compressed when that is smaller.
std::vector<uint8_t> EncodeSideRecord(const SideRecord& record);

// A .kvc file's leading side record, if it has one, and where its frames start.
struct KvcSide {
  std::optional<SideRecord> record;
  size_t record_bytes = 0;  // 0 without a record; the frames start here
};
// DATA_LOSS for a damaged record (checksum, length, coding), INVALID_ARGUMENT for a source or
// version this build does not know. Bytes that do not start with the magic have no record.
absl::StatusOr<KvcSide> ReadSideRecord(absl::Span<const uint8_t> file);

}  // namespace kvcomp::io

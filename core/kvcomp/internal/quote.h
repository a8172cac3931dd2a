// Caller strings quoted into error messages, bounded: a status message echoes at most a
// prefix of a spec, a tensor name or a datatype, however long the caller made it. Whole
// strings came back in gRPC status messages, where past 8-16 KB a client sees only "received
// initial metadata size exceeds limit" instead of the error (issue 25, finding 7).
#pragma once

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace kvcomp {

inline constexpr size_t kMaxQuotedBytes = 64;

// 'text' with control characters and invalid UTF-8 escaped; a longer text is cut to its first
// `max_bytes` bytes and says how long it was: 'zstd(3)zzzz...' (1700000 bytes).
std::string Quote(absl::string_view text, size_t max_bytes = kMaxQuotedBytes);

}  // namespace kvcomp

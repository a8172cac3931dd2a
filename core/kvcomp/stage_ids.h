// Every stage's persistent ID, in one place (as ClickHouse's CompressionMethodByte). A frame
// names its stages by these bytes, so an ID keeps its meaning and its parameter schema forever:
// never renumber one, never reuse a retired one (mark it retired here instead).
// Stages take their ID from here (`.id = stage_id::kZstd`). docs/FORMAT.md's "Stage IDs" table
// lists the same IDs and names; tests/core/stage_ids_test.cc fails when it and the registry
// disagree.
#pragma once

#include <cstdint>

namespace kvcomp::stage_id {

// Ranges. 0 is never valid.
inline constexpr uint8_t kFirstLossless = 1;  // lossless transforms and entropy backends
inline constexpr uint8_t kLastLossless = 31;
inline constexpr uint8_t kFirstLossy = 32;  // lossy stages
inline constexpr uint8_t kLastLossy = 63;
// 64-255: reserved for a future range (e.g. stages of another element family).

enum : uint8_t {
  kZstd = 1,
  // 2-16: free.
  kPlanes = 17,
  kGear = 18,
  kDelta = 19,
  kXor = 20,
  // 21: free.
  kDedupe = 22,
  kHuff = 23,
  // 24: free.
  kCm = 25,
  // The one lossy stage in the lossless range (FP32 -> FP16/BF16 rounds): numbered before the
  // rule was checked, and an ID is never renumbered.
  kCast = 26,
  kRans = 27,
  kReorder = 28,
  kProtect = 29,
  kQhuff = 30,
  kQsplit = 31,
  kUquant = 32,
  kQuant = 33,
  kBlocknorm = 34,
  // 35-63: free.
};

}  // namespace kvcomp::stage_id

#include "core/kvcomp/presets/duplicate_rows.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>

namespace kvcomp {
namespace {

constexpr uint64_t kSampleRows = 1024;  // see the header
// Bytes of each head's row the sample hashes. Rows that agree on their first 32 bytes in every
// head are, on real caches, the same token; a rare false match only makes the preset try the
// row map, which is exact and pays for itself or costs a few bytes.
constexpr size_t kSampleRowPrefix = 32;

uint64_t MixRowPrefix(const uint8_t* p, size_t bytes, uint64_t h) {
  // The multiply is off the chain from one word to the next: only the rotate and add are on it.
  const auto mix = [&h](uint64_t word) { h = std::rotl(h, 23) + word * 0x9E3779B97F4A7C15ull; };
  uint64_t word;
  size_t i = 0;
  for (; i + 8 <= bytes; i += 8) mix((std::memcpy(&word, p + i, 8), word));
  if (i < bytes) mix((word = 0, std::memcpy(&word, p + i, bytes - i), word));
  return h;
}

}  // namespace

// Open addressing in a fixed table: this runs on every tensor, and on a 32 KiB KV block a hash
// set's allocations cost more than the rest of the sample.
double SampleDuplicateFraction(const TensorView& t) {
  const Geometry g = t.geometry();
  const uint64_t rows = std::min<uint64_t>(g.rows, kSampleRows);
  if (rows < 2 || g.cols == 0) return 0;
  const size_t seg = g.cols * DTypeSize(t.meta().dtype);
  const size_t prefix = std::min(seg, kSampleRowPrefix);
  const uint8_t* src = t.bytes().data();
  constexpr size_t kSlots = 2 * kSampleRows;  // a power of two, at most half full
  std::array<uint64_t, kSlots> table{};       // 0 marks an empty slot
  // Plane by plane, so the rows' hash chains are independent and overlap.
  std::array<uint64_t, kSampleRows> hash{};
  for (uint64_t p = 0; p < g.planes; ++p) {
    const uint8_t* plane = src + p * g.rows * seg;
    for (uint64_t r = 0; r < rows; ++r) hash[r] = MixRowPrefix(plane + r * seg, prefix, hash[r]);
  }
  uint64_t dups = 0;
  for (uint64_t r = 0; r < rows; ++r) {
    const uint64_t h = hash[r] | 1;
    for (size_t i = (h >> 32) & (kSlots - 1);; i = (i + 1) & (kSlots - 1)) {
      if (table[i] == 0) {
        table[i] = h;
        break;
      }
      if (table[i] == h) {
        ++dups;
        break;
      }
    }
  }
  return static_cast<double>(dups) / static_cast<double>(rows);
}

}  // namespace kvcomp

// SHA-256 (FIPS 180-4), for the sha256 fields of dump manifests.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/types/span.h"

namespace kvcomp::io {

class Sha256 {
 public:
  Sha256();
  void Update(absl::Span<const uint8_t> data);
  std::array<uint8_t, 32> Finish();  // the object must not be reused afterwards

 private:
  void Block(const uint8_t* p);
  uint32_t h_[8];
  uint8_t buf_[64];
  size_t buf_len_ = 0;
  uint64_t total_ = 0;
};

// Lower-case hex digest of `data`.
std::string Sha256Hex(absl::Span<const uint8_t> data);

}  // namespace kvcomp::io

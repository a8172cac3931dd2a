// A minimal ZIP reader and writer, enough for .npz archives.
//
// Reading: STORED and DEFLATE entries (np.savez and np.savez_compressed), zip64 sizes and
// offsets, CRC-32 verified. Encrypted, multi-disk and other methods are rejected.
// Writing: STORED entries with CRC-32, zip64 records when a size, offset or count needs them
// (or always, with force_zip64), fixed timestamps so output is reproducible.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "client/io/file_util.h"

namespace kvcomp::io {

struct ZipEntry {
  std::string name;
  std::vector<uint8_t> data;  // uncompressed
};

struct ZipReadLimits {
  uint64_t max_entries = 100000;
  uint64_t max_entry_bytes = uint64_t{1} << 38;
};

// Every entry of a ZIP image, in central-directory order, decompressed and CRC-checked.
// Malformed archives give INVALID_ARGUMENT (structure) or DATA_LOSS (CRC, inflate errors).
absl::StatusOr<std::vector<ZipEntry>> ReadZip(absl::Span<const uint8_t> archive,
                                              const ZipReadLimits& limits = {});

// An entry to write, whose data may come in several parts (e.g. a header and a payload).
struct ZipWriteEntry {
  std::string name;
  std::vector<absl::Span<const uint8_t>> parts;
};

struct ZipWriteOptions {
  bool force_zip64 = false;
};

absl::Status WriteZip(const std::vector<ZipWriteEntry>& entries, Sink& sink,
                      const ZipWriteOptions& options = {});

}  // namespace kvcomp::io

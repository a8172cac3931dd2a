// safetensors files (https://github.com/huggingface/safetensors, format as of 0.4): an 8-byte
// little-endian header length N, N bytes of JSON header, then the raw tensor bytes.
//
//   {"layer0_k": {"dtype": "F16", "shape": [8, 512, 128], "data_offsets": [0, 1048576]},
//    "__metadata__": {"kvcomp.layout.layer0_k": "token_major"}}
//
// data_offsets are [begin, end) into the byte buffer after the header. The reader checks what
// the reference implementation checks: the header is a JSON object of at most 100 MB, every
// tensor's byte length is shape x itemsize, and the tensors tile the buffer exactly, without
// gaps, overlaps or trailing bytes. Tensors are returned in buffer order. F16, F32 and BF16
// are KV dtypes; tensors of other dtypes are skipped (and listed) unless named layer{L}_{k,v}.
// Layout is head-major unless the "__metadata__" entry "kvcomp.layout.<name>" says
// "token_major".
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "client/io/file_util.h"
#include "client/io/kv_tensor.h"

namespace kvcomp::io {

inline constexpr uint64_t kSafetensorsMaxHeaderBytes = 100'000'000;

// Parses a whole safetensors image. Any malformation is INVALID_ARGUMENT naming `what` and
// the problem.
absl::StatusOr<KvCache> ParseSafetensors(absl::Span<const uint8_t> bytes, absl::string_view what,
                                         std::vector<std::string>* skipped = nullptr);

// Writes a safetensors image: tensors in cache order, header padded with spaces to a multiple
// of 8 bytes (as the reference writer does). Names must be unique.
absl::Status EncodeSafetensors(const KvCache& cache, Sink& sink);

absl::StatusOr<KvCache> ReadSafetensorsFile(const std::string& path,
                                            std::vector<std::string>* skipped = nullptr);
absl::Status WriteSafetensorsFile(const std::string& path, const KvCache& cache);

}  // namespace kvcomp::io

// Dump folders, the format of ../shared/kv/<run>: raw little-endian C-order files
// "layer{L}_{k,v}.f32|.f16|.bf16" plus "manifest.json" whose "files" list gives, per file,
// "file", "layer", "tensor" ("K"/"V"), "dtype" ("float32"/"float16"/"bfloat16"), "shape",
// "bytes" and "sha256" (and, written by kvcomp for token-major tensors, "layout").
#pragma once

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "client/io/kv_tensor.h"

namespace kvcomp::io {

struct DumpReadOptions {
  // Which copy to read when a tensor is stored in several dtypes. nullopt: FP16 if present,
  // else FP32, else BF16. A dtype that a tensor lacks is an error.
  std::optional<DType> dtype;
  bool verify_sha256 = true;
};

// Reads every tensor listed in `dir`/manifest.json, ordered by layer then K before V. Sizes,
// shapes and (by default) sha256 are checked against the manifest and the files on disk.
absl::StatusOr<KvCache> ReadDumpDir(const std::string& dir, const DumpReadOptions& options = {});

// File name of a tensor in a dump: "<name>.f32" / ".f16" / ".bf16".
std::string DumpFileName(const NamedTensor& tensor);

// Writes `dir` atomically (a temporary folder renamed into place): one raw file per tensor,
// named as the original dump names them, plus manifest.json with sizes and sha256.
absl::Status WriteDumpDir(const std::string& dir, const KvCache& cache);

}  // namespace kvcomp::io

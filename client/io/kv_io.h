// One entry point for every on-disk form of a KV cache, chosen by the path:
// a directory is a dump folder, "*.npy" one array, "*.npz" an archive of arrays,
// "*.safetensors" a safetensors file.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "io/kv_tensor.h"

namespace kvcomp::io {

enum class CacheFormat { kDumpDir, kNpy, kNpz, kSafetensors };

absl::string_view CacheFormatName(CacheFormat format);

// For reading: an existing directory is a dump folder, otherwise the extension decides.
// For writing: ".npy", ".npz" and ".safetensors" by extension, anything else is a dump
// folder.
absl::StatusOr<CacheFormat> InputFormat(const std::string& path);
CacheFormat OutputFormat(const std::string& path);

struct ReadOptions {
  // Dump folders: which copy to read (nullopt: FP16 first). Files: when set, every array
  // must have this dtype (no silent conversion).
  std::optional<DType> dtype;
  // .npz/.safetensors: receives the arrays skipped as not KV tensors, "name (dtype)".
  std::vector<std::string>* skipped = nullptr;
};

absl::StatusOr<KvCache> ReadKvCache(const std::string& path, const ReadOptions& options = {});

struct WriteOptions {
  // Replace an existing output (a file, or a directory holding a manifest.json).
  bool overwrite = false;
};

// Writes atomically: nothing appears at `path` unless the whole cache was written.
absl::Status WriteKvCache(const std::string& path, const KvCache& cache,
                          const WriteOptions& options = {});

}  // namespace kvcomp::io

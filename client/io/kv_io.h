// One entry point for every on-disk form of a KV cache, chosen by the path:
// a directory is a dump folder, "*.npy" one array, "*.npz" an archive of arrays,
// "*.safetensors" a safetensors file; a file starting with llama.cpp's sequence-state magic is
// a state file (io/llama_state.h), whatever its name.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/io/kv_tensor.h"
#include "client/io/kvc_side.h"

namespace kvcomp::io {

enum class CacheFormat { kDumpDir, kNpy, kNpz, kSafetensors, kLlamaState };

absl::string_view CacheFormatName(CacheFormat format);

// For reading: an existing directory is a dump folder, a file with the sequence-state magic a
// llama.cpp state, otherwise the extension decides.
// For writing: ".npy", ".npz" and ".safetensors" by extension; anything else is a dump folder,
// or a llama.cpp state file when `side` holds a state's skeleton.
absl::StatusOr<CacheFormat> InputFormat(const std::string& path);
CacheFormat OutputFormat(const std::string& path, const SideRecord* side = nullptr);

struct ReadOptions {
  // Dump folders: which copy to read (nullopt: FP16 first). Files: when set, every array
  // must have this dtype (no silent conversion).
  std::optional<DType> dtype;
  // .npz/.safetensors: receives the arrays skipped as not KV tensors, "name (dtype)".
  std::vector<std::string>* skipped = nullptr;
  // llama.cpp states: receives the state's skeleton (every byte that is not K/V values), which
  // WriteKvCache needs to write the state back. Without it only the tensors are read.
  std::optional<SideRecord>* side = nullptr;
  // llama.cpp states: receives what the state holds (tokens, cells, layers, v_trans).
  std::string* summary = nullptr;
};

absl::StatusOr<KvCache> ReadKvCache(const std::string& path, const ReadOptions& options = {});

struct WriteOptions {
  // Replace an existing output (a file, or a directory holding a manifest.json).
  bool overwrite = false;
  // A llama.cpp state's skeleton (ReadOptions::side, or a .kvc file's side record): unless the
  // path ends in .npz, .npy or .safetensors, the output is that state file, rebuilt from the
  // skeleton and the tensors (which must be the ones it has places for).
  const SideRecord* side = nullptr;
};

// Writes atomically: nothing appears at `path` unless the whole cache was written.
absl::Status WriteKvCache(const std::string& path, const KvCache& cache,
                          const WriteOptions& options = {});

}  // namespace kvcomp::io

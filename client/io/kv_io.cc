#include "client/io/kv_io.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/io/dump.h"
#include "client/io/file_util.h"
#include "client/io/llama_state.h"
#include "client/io/npz.h"
#include "client/io/safetensors.h"
#include "core/kvcomp/internal/status_macros.h"

namespace kvcomp::io {
namespace {

bool HasExt(const std::string& path, absl::string_view ext) {
  return absl::EndsWithIgnoreCase(path, ext);
}

// The first bytes of a file (fewer when it is shorter or unreadable: the reader then says why).
std::vector<uint8_t> FileHead(const std::string& path) {
  std::vector<uint8_t> head(8);
  std::ifstream in(path, std::ios::binary);
  in.read(reinterpret_cast<char*>(head.data()), static_cast<std::streamsize>(head.size()));
  head.resize(in ? head.size() : static_cast<size_t>(std::max<std::streamsize>(in.gcount(), 0)));
  return head;
}

}  // namespace

absl::string_view CacheFormatName(CacheFormat format) {
  switch (format) {
    case CacheFormat::kDumpDir:
      return "dump folder";
    case CacheFormat::kNpy:
      return ".npy";
    case CacheFormat::kNpz:
      return ".npz";
    case CacheFormat::kSafetensors:
      return ".safetensors";
    case CacheFormat::kLlamaState:
      return "llama.cpp sequence state";
  }
  return "?";
}

absl::StatusOr<CacheFormat> InputFormat(const std::string& path) {
  if (IsDirectory(path)) return CacheFormat::kDumpDir;
  if (!PathExists(path)) return absl::NotFoundError(absl::StrCat(path, ": no such file"));
  // State files have no extension of their own (llama-server's slots are named by the user).
  if (HasLlamaStateMagic(FileHead(path))) return CacheFormat::kLlamaState;
  if (HasExt(path, ".npz")) return CacheFormat::kNpz;
  if (HasExt(path, ".npy")) return CacheFormat::kNpy;
  if (HasExt(path, ".safetensors")) return CacheFormat::kSafetensors;
  return absl::InvalidArgumentError(
      absl::StrCat(path,
                   ": unknown input kind (expected a dump folder, a .npy, .npz or .safetensors "
                   "file, or a llama.cpp sequence-state file)"));
}

CacheFormat OutputFormat(const std::string& path, const SideRecord* side) {
  if (HasExt(path, ".npz")) return CacheFormat::kNpz;
  if (HasExt(path, ".npy")) return CacheFormat::kNpy;
  if (HasExt(path, ".safetensors")) return CacheFormat::kSafetensors;
  if (side != nullptr && side->source == SideSource::kLlamaState) return CacheFormat::kLlamaState;
  return CacheFormat::kDumpDir;
}

absl::StatusOr<KvCache> ReadKvCache(const std::string& path, const ReadOptions& options) {
  KV_ASSIGN_OR_RETURN(CacheFormat format, InputFormat(path));
  KvCache cache;
  switch (format) {
    case CacheFormat::kDumpDir: {
      DumpReadOptions dump;
      dump.dtype = options.dtype;
      return ReadDumpDir(path, dump);
    }
    case CacheFormat::kNpy: {
      KV_ASSIGN_OR_RETURN(cache, ReadNpyFile(path));
      break;
    }
    case CacheFormat::kNpz: {
      KV_ASSIGN_OR_RETURN(cache, ReadNpzFile(path, options.skipped));
      break;
    }
    case CacheFormat::kSafetensors: {
      KV_ASSIGN_OR_RETURN(cache, ReadSafetensorsFile(path, options.skipped));
      break;
    }
    case CacheFormat::kLlamaState: {
      KV_ASSIGN_OR_RETURN(LlamaState state, ReadLlamaStateFile(path));
      if (options.side) *options.side = SideRecord{SideSource::kLlamaState, state.skeleton};
      if (options.summary) *options.summary = state.summary.ToString();
      cache = std::move(state.tensors);
      break;
    }
  }
  if (options.dtype) {
    for (const NamedTensor& t : cache) {
      if (t.tensor.meta.dtype != *options.dtype) {
        return absl::InvalidArgumentError(absl::StrCat(
            path, ": array '", t.name, "' is ", DTypeName(t.tensor.meta.dtype), ", not the ",
            DTypeName(*options.dtype), " asked for (kvcomp does not convert dtypes)"));
      }
    }
  }
  return cache;
}

absl::Status WriteKvCache(const std::string& path, const KvCache& cache,
                          const WriteOptions& options) {
  const CacheFormat format = OutputFormat(path, options.side);
  if (format == CacheFormat::kLlamaState) {
    return WriteLlamaStateFile(path, options.side->bytes, cache, options.overwrite);
  }
  if (cache.empty()) return absl::InvalidArgumentError("refusing to write an empty cache");
  for (const NamedTensor& t : cache) {
    if (IsBlockQuantized(t.tensor.meta.dtype)) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor '", t.name, "' is ", DTypeName(t.tensor.meta.dtype), ": ",
                       CacheFormatName(format),
                       " has no quantised dtype, so quantised tensors are written to llama.cpp "
                       "state files only"));
    }
  }
  if (PathExists(path)) {
    if (!options.overwrite) {
      return absl::AlreadyExistsError(
          absl::StrCat(path, " already exists (pass --force to replace it)"));
    }
    if (format == CacheFormat::kDumpDir) {
      // Only ever delete what looks like a dump folder written before.
      if (!IsDirectory(path) || !PathExists(absl::StrCat(path, "/manifest.json"))) {
        return absl::AlreadyExistsError(
            absl::StrCat(path, " exists and is not a dump folder; not replacing it"));
      }
      // Write the new folder beside it first; swap only once it is complete.
      const std::string staged = absl::StrCat(path, ".kvcomp-new");
      std::error_code ec;
      std::filesystem::remove_all(staged, ec);
      KV_RETURN_IF_ERROR(WriteDumpDir(staged, cache));
      const std::string old = absl::StrCat(path, ".kvcomp-old");
      std::filesystem::remove_all(old, ec);
      std::filesystem::rename(path, old, ec);
      if (ec) return absl::InternalError(absl::StrCat("rename ", path, ": ", ec.message()));
      std::filesystem::rename(staged, path, ec);
      if (ec) return absl::InternalError(absl::StrCat("rename to ", path, ": ", ec.message()));
      std::filesystem::remove_all(old, ec);
      return absl::OkStatus();
    }
  }
  switch (format) {
    case CacheFormat::kDumpDir:
      return WriteDumpDir(path, cache);
    case CacheFormat::kNpy:
      return WriteNpyFile(path, cache);
    case CacheFormat::kNpz:
      return WriteNpzFile(path, cache);
    case CacheFormat::kSafetensors:
      return WriteSafetensorsFile(path, cache);
    case CacheFormat::kLlamaState:
      break;  // written above
  }
  return absl::InternalError("unreachable");
}

}  // namespace kvcomp::io

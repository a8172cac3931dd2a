#include "io/kv_io.h"

#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "io/dump.h"
#include "io/file_util.h"
#include "io/npz.h"
#include "io/safetensors.h"
#include "kvcomp/status_macros.h"

namespace kvcomp::io {
namespace {

bool HasExt(const std::string& path, absl::string_view ext) {
  return absl::EndsWithIgnoreCase(path, ext);
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
  }
  return "?";
}

absl::StatusOr<CacheFormat> InputFormat(const std::string& path) {
  if (IsDirectory(path)) return CacheFormat::kDumpDir;
  if (!PathExists(path)) return absl::NotFoundError(absl::StrCat(path, ": no such file"));
  if (HasExt(path, ".npz")) return CacheFormat::kNpz;
  if (HasExt(path, ".npy")) return CacheFormat::kNpy;
  if (HasExt(path, ".safetensors")) return CacheFormat::kSafetensors;
  return absl::InvalidArgumentError(absl::StrCat(
      path, ": unknown input kind (expected a dump folder, a .npy, .npz or .safetensors file)"));
}

CacheFormat OutputFormat(const std::string& path) {
  if (HasExt(path, ".npz")) return CacheFormat::kNpz;
  if (HasExt(path, ".npy")) return CacheFormat::kNpy;
  if (HasExt(path, ".safetensors")) return CacheFormat::kSafetensors;
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
  if (cache.empty()) return absl::InvalidArgumentError("refusing to write an empty cache");
  const CacheFormat format = OutputFormat(path);
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
  }
  return absl::InternalError("unreachable");
}

}  // namespace kvcomp::io

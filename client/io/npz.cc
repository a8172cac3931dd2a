#include "client/io/npz.h"

#include <unistd.h>

#include <cerrno>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/io/npy.h"
#include "client/io/sidecar.h"
#include "core/kvcomp/internal/status_macros.h"

namespace kvcomp::io {
namespace {

std::string Basename(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

absl::Span<const uint8_t> AsBytes(absl::string_view s) {
  return absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

absl::Status CheckUniqueNames(const KvCache& cache) {
  std::set<std::string> seen;
  for (const NamedTensor& t : cache) {
    if (!IsSafeTensorName(t.name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor name '", t.name, "' is not usable as a file or member name"));
    }
    if (!seen.insert(t.name).second) {
      return absl::InvalidArgumentError(absl::StrCat("duplicate tensor name '", t.name, "'"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<KvCache> ParseNpz(absl::Span<const uint8_t> archive, absl::string_view what,
                                 std::vector<std::string>* skipped) {
  auto entries = ReadZip(archive);
  if (!entries.ok()) {
    return absl::Status(entries.status().code(),
                        absl::StrCat(what, ": ", entries.status().message()));
  }
  Sidecar sidecar;
  for (const ZipEntry& e : *entries) {
    if (e.name == kNpzSidecarMember) {
      KV_ASSIGN_OR_RETURN(
          sidecar, ParseSidecar(absl::string_view(reinterpret_cast<const char*>(e.data.data()),
                                                  e.data.size()),
                                absl::StrCat(what, ": ", kNpzSidecarMember)));
    }
  }
  KvCache cache;
  for (const ZipEntry& e : *entries) {
    if (e.name == kNpzSidecarMember) continue;
    if (!absl::EndsWith(e.name, ".npy")) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": member '", e.name, "' is not an .npy array"));
    }
    NamedTensor t;
    t.name = e.name.substr(0, e.name.size() - 4);
    NpyDecodeOptions opts;
    if (auto it = sidecar.find(t.name); it != sidecar.end()) {
      opts.u2_is_bf16 = it->second.bf16;
      opts.layout = it->second.layout;
    }
    const std::string member_what = absl::StrCat(what, ": ", e.name);
    auto header = ParseNpyHeader(e.data);
    if (!header.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(member_what, ": ", header.status().message()));
    }
    const std::string& d = header->descr;
    const bool kv_dtype = d == "<f4" || d == "<f2" || (d == "<u2" && opts.u2_is_bf16);
    if (!kv_dtype && !ParseTensorName(t.name)) {
      if (skipped) skipped->push_back(absl::StrCat(t.name, " (", d, ")"));
      continue;
    }
    KV_ASSIGN_OR_RETURN(t.tensor, ParseNpy(e.data, opts, member_what));
    ApplyNameToMeta(t.name, &t.tensor.meta);
    cache.push_back(std::move(t));
  }
  if (cache.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": holds no KV arrays (FP32/FP16/BF16)"));
  }
  return cache;
}

absl::Status EncodeNpz(const KvCache& cache, Sink& sink, const ZipWriteOptions& options) {
  KV_RETURN_IF_ERROR(CheckUniqueNames(cache));
  std::vector<std::vector<uint8_t>> headers;
  headers.reserve(cache.size());
  std::vector<ZipWriteEntry> entries;
  for (const NamedTensor& t : cache) {
    headers.push_back(EncodeNpyHeader(t.tensor.meta));
    entries.push_back({absl::StrCat(t.name, ".npy"), {headers.back(), t.tensor.bytes}});
  }
  const std::string sidecar = MakeSidecar(cache);
  if (!sidecar.empty()) entries.push_back({kNpzSidecarMember, {AsBytes(sidecar)}});
  return WriteZip(entries, sink, options);
}

absl::StatusOr<KvCache> ReadNpzFile(const std::string& path, std::vector<std::string>* skipped) {
  KV_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, ReadFileBytes(path));
  return ParseNpz(bytes, path, skipped);
}

absl::Status WriteNpzFile(const std::string& path, const KvCache& cache,
                          const ZipWriteOptions& options) {
  KV_RETURN_IF_ERROR(CheckUniqueNames(cache));
  return WriteFileAtomic(path, [&](Sink& sink) { return EncodeNpz(cache, sink, options); });
}

absl::StatusOr<KvCache> ReadNpyFile(const std::string& path) {
  KV_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, ReadFileBytes(path));
  NamedTensor t;
  t.name = Basename(path);
  if (absl::EndsWith(t.name, ".npy")) t.name.resize(t.name.size() - 4);
  NpyDecodeOptions opts;
  const std::string sidecar_path = absl::StrCat(path, kNpySidecarSuffix);
  if (PathExists(sidecar_path)) {
    KV_ASSIGN_OR_RETURN(std::vector<uint8_t> json, ReadFileBytes(sidecar_path, 1 << 20));
    KV_ASSIGN_OR_RETURN(
        Sidecar sidecar,
        ParseSidecar(absl::string_view(reinterpret_cast<const char*>(json.data()), json.size()),
                     sidecar_path));
    // A single-array sidecar may name the array or use the file stem.
    if (auto it = sidecar.find(t.name); it != sidecar.end()) {
      opts.u2_is_bf16 = it->second.bf16;
      opts.layout = it->second.layout;
    } else if (sidecar.size() == 1) {
      opts.u2_is_bf16 = sidecar.begin()->second.bf16;
      opts.layout = sidecar.begin()->second.layout;
    }
  }
  KV_ASSIGN_OR_RETURN(t.tensor, ParseNpy(bytes, opts, path));
  ApplyNameToMeta(t.name, &t.tensor.meta);
  KvCache cache;
  cache.push_back(std::move(t));
  return cache;
}

absl::Status WriteNpyFile(const std::string& path, const KvCache& cache) {
  if (cache.size() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("an .npy file holds exactly one tensor, this cache has ", cache.size(),
                     "; write an .npz or a dump folder instead"));
  }
  const std::string sidecar_path = absl::StrCat(path, kNpySidecarSuffix);
  KvCache renamed;
  renamed.push_back({Basename(path), Tensor{cache[0].tensor.meta, {}}});
  if (absl::EndsWith(renamed[0].name, ".npy")) renamed[0].name.resize(renamed[0].name.size() - 4);
  const std::string sidecar = MakeSidecar(renamed);
  const std::vector<uint8_t> header = EncodeNpyHeader(cache[0].tensor.meta);
  KV_RETURN_IF_ERROR(WriteFileAtomic(path, [&](Sink& sink) {
    KV_RETURN_IF_ERROR(sink.Write(header));
    return sink.Write(cache[0].tensor.bytes);
  }));
  if (!sidecar.empty()) return WriteFileAtomic(sidecar_path, AsBytes(sidecar));
  if (PathExists(sidecar_path) && ::unlink(sidecar_path.c_str()) != 0) {
    return ErrnoStatus(errno, "remove stale sidecar", sidecar_path);
  }
  return absl::OkStatus();
}

}  // namespace kvcomp::io

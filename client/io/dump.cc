#include "client/io/dump.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "client/io/file_util.h"
#include "client/io/sha256.h"
#include "core/kvcomp/internal/status_macros.h"

namespace kvcomp::io {
namespace {

using nlohmann::json;

absl::string_view DumpExt(DType d) {
  switch (d) {
    case DType::kFP32:
      return "f32";
    case DType::kFP16:
      return "f16";
    case DType::kBF16:
      return "bf16";
    case DType::kQ8_0:
    case DType::kQ4_0:
      break;  // WriteKvCache refuses them before any writer runs
  }
  return "bin";
}

absl::string_view ManifestDType(DType d) {
  switch (d) {
    case DType::kFP32:
      return "float32";
    case DType::kFP16:
      return "float16";
    case DType::kBF16:
      return "bfloat16";
    case DType::kQ8_0:
    case DType::kQ4_0:
      break;
  }
  return "?";
}

std::optional<DType> ParseManifestDType(const std::string& s) {
  if (s == "float32" || s == "FP32") return DType::kFP32;
  if (s == "float16" || s == "FP16") return DType::kFP16;
  if (s == "bfloat16" || s == "BF16") return DType::kBF16;
  return std::nullopt;
}

struct FileEntry {
  std::string file;
  std::string stem;  // the tensor name: file without its extension
  TensorMeta meta;
  uint64_t bytes = 0;
  std::string sha256;  // empty when the manifest has none
};

absl::StatusOr<FileEntry> ParseEntry(const json& f, size_t index, const std::string& where) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": files[", index, "]: ", why));
  };
  if (!f.is_object()) return bad("not an object");
  FileEntry e;
  if (!f.contains("file") || !f["file"].is_string()) return bad("missing \"file\"");
  e.file = f["file"].get<std::string>();
  if (!IsSafeTensorName(e.file)) return bad(absl::StrCat("unsafe file name '", e.file, "'"));
  const size_t dot = e.file.rfind('.');
  e.stem = dot == std::string::npos ? e.file : e.file.substr(0, dot);
  if (!f.contains("dtype") || !f["dtype"].is_string()) return bad("missing \"dtype\"");
  auto dtype = ParseManifestDType(f["dtype"].get<std::string>());
  if (!dtype) return bad(absl::StrCat("unknown dtype '", f["dtype"].get<std::string>(), "'"));
  e.meta.dtype = *dtype;
  if (!f.contains("shape") || !f["shape"].is_array()) return bad("missing \"shape\"");
  if (f["shape"].size() > kMaxRank) return bad("shape has too many dimensions");
  for (const json& d : f["shape"]) {
    if (!d.is_number_integer()) return bad("shape entries must be integers");
    e.meta.shape.push_back(d.get<int64_t>());
  }
  if (f.contains("layout")) {
    if (f["layout"] == "token_major") {
      e.meta.layout = Layout::kTokenMajor;
    } else if (!(f["layout"] == "head_major")) {
      return bad("unknown \"layout\"");
    }
  }
  if (absl::Status s = e.meta.Validate(); !s.ok()) return bad(s.message());
  if (f.contains("layer")) {
    if (!f["layer"].is_number_integer() || f["layer"].get<int64_t>() < 0 ||
        f["layer"].get<int64_t>() > (int64_t{1} << 30)) {
      return bad("\"layer\" must be a non-negative integer");
    }
    e.meta.layer = f["layer"].get<int32_t>();
  }
  if (f.contains("tensor")) {
    if (f["tensor"] == "K" || f["tensor"] == "k") {
      e.meta.kind = Kind::kKey;
    } else if (f["tensor"] == "V" || f["tensor"] == "v") {
      e.meta.kind = Kind::kValue;
    } else {
      return bad("\"tensor\" must be \"K\" or \"V\"");
    }
  }
  if (!f.contains("layer") && !f.contains("tensor")) ApplyNameToMeta(e.stem, &e.meta);
  e.bytes = e.meta.NumBytes();
  if (f.contains("bytes")) {
    if (!f["bytes"].is_number_unsigned() || f["bytes"].get<uint64_t>() != e.bytes) {
      return bad(absl::StrCat("\"bytes\" does not equal shape ", e.meta.ShapeString(), " x ",
                              DTypeSize(e.meta.dtype), " = ", e.bytes));
    }
  }
  if (f.contains("sha256")) {
    if (!f["sha256"].is_string() || f["sha256"].get<std::string>().size() != 64) {
      return bad("\"sha256\" must be 64 hex digits");
    }
    e.sha256 = f["sha256"].get<std::string>();
  }
  return e;
}

}  // namespace

std::string DumpFileName(const NamedTensor& t) {
  return absl::StrCat(t.name, ".", DumpExt(t.tensor.meta.dtype));
}

absl::StatusOr<KvCache> ReadDumpDir(const std::string& dir, const DumpReadOptions& options) {
  const std::string manifest_path = absl::StrCat(dir, "/manifest.json");
  if (!PathExists(manifest_path)) {
    return absl::InvalidArgumentError(absl::StrCat(
        dir, " has no manifest.json: a dump folder needs one to give the tensor shapes"));
  }
  KV_ASSIGN_OR_RETURN(std::vector<uint8_t> text, ReadFileBytes(manifest_path, 64 << 20));
  const json m = json::parse(text.begin(), text.end(), nullptr, false);
  if (m.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat(manifest_path, ": not valid JSON"));
  }
  if (!m.is_object() || !m.contains("files") || !m["files"].is_array()) {
    return absl::InvalidArgumentError(
        absl::StrCat(manifest_path, ": expected an object with a \"files\" array"));
  }
  // Group the copies of each tensor (layer0_k.f32, layer0_k.f16) by name.
  std::map<std::string, std::vector<FileEntry>> by_name;
  std::set<std::string> files;
  for (size_t i = 0; i < m["files"].size(); ++i) {
    KV_ASSIGN_OR_RETURN(FileEntry e, ParseEntry(m["files"][i], i, manifest_path));
    if (!files.insert(e.file).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(manifest_path, ": file '", e.file, "' is listed twice"));
    }
    by_name[e.stem].push_back(std::move(e));
  }
  if (by_name.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(manifest_path, ": lists no files"));
  }
  KvCache cache;
  for (auto& [name, copies] : by_name) {
    const FileEntry* pick = nullptr;
    const std::vector<DType> order =
        options.dtype ? std::vector<DType>{*options.dtype}
                      : std::vector<DType>{DType::kFP16, DType::kFP32, DType::kBF16};
    for (DType d : order) {
      for (const FileEntry& e : copies) {
        if (!pick && e.meta.dtype == d) pick = &e;
      }
    }
    if (!pick) {
      return absl::InvalidArgumentError(
          absl::StrCat(dir, ": tensor '", name, "' has no ", DTypeName(*options.dtype), " file"));
    }
    const std::string path = absl::StrCat(dir, "/", pick->file);
    std::error_code ec;
    const uint64_t on_disk = std::filesystem::file_size(path, ec);
    std::vector<uint8_t> bytes;
    if (!ec && on_disk == pick->bytes) {
      KV_ASSIGN_OR_RETURN(bytes, ReadFileBytes(path, pick->bytes));
    } else if (ec) {
      KV_ASSIGN_OR_RETURN(bytes, ReadFileBytes(path, pick->bytes));  // reports the error
    }
    if (ec || on_disk != pick->bytes || bytes.size() != pick->bytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": ", ec ? bytes.size() : on_disk, " bytes, but the manifest's shape ",
          pick->meta.ShapeString(), " x ", DTypeName(pick->meta.dtype), " needs ", pick->bytes));
    }
    if (options.verify_sha256 && !pick->sha256.empty() && Sha256Hex(bytes) != pick->sha256) {
      return absl::DataLossError(
          absl::StrCat(path, ": sha256 does not match the manifest (file corrupted?)"));
    }
    cache.push_back({name, Tensor{pick->meta, std::move(bytes)}});
  }
  std::stable_sort(cache.begin(), cache.end(), [](const NamedTensor& a, const NamedTensor& b) {
    const auto ka = std::make_pair(a.tensor.meta.layer, static_cast<int>(a.tensor.meta.kind));
    const auto kb = std::make_pair(b.tensor.meta.layer, static_cast<int>(b.tensor.meta.kind));
    return ka < kb;
  });
  return cache;
}

absl::Status WriteDumpDir(const std::string& dir, const KvCache& cache) {
  std::set<std::string> names;
  for (const NamedTensor& t : cache) {
    if (!IsSafeTensorName(t.name) || !names.insert(DumpFileName(t)).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor name '", t.name, "' is unusable or repeated in a dump folder"));
    }
  }
  return WriteDirAtomic(dir, [&](const std::string& tmp) -> absl::Status {
    json files = json::array();
    for (const NamedTensor& t : cache) {
      const std::string file = DumpFileName(t);
      KV_RETURN_IF_ERROR(WriteFileDurable(absl::StrCat(tmp, "/", file), t.tensor.bytes));
      const TensorMeta& m = t.tensor.meta;
      json f = {{"file", file}};
      if (m.layer >= 0) f["layer"] = m.layer;
      if (m.kind != Kind::kUnspecified) f["tensor"] = std::string(KindName(m.kind));
      f["dtype"] = std::string(ManifestDType(m.dtype));
      f["shape"] = m.shape;
      f["bytes"] = t.tensor.bytes.size();
      f["sha256"] = Sha256Hex(t.tensor.bytes);
      if (m.layout == Layout::kTokenMajor) f["layout"] = "token_major";
      files.push_back(std::move(f));
    }
    json manifest = {
        {"writer", "kvcomp"},
        {"layout",
         "raw little-endian, C order; head_major tensors are [n_kv_heads, seq_len, head_dim]"},
        {"files", std::move(files)}};
    const std::string text = manifest.dump(1) + "\n";
    return WriteFileDurable(
        absl::StrCat(tmp, "/manifest.json"),
        absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
  });
}

}  // namespace kvcomp::io

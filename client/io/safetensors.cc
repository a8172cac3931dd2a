#include "client/io/safetensors.h"

#include <algorithm>
#include <limits>
#include <set>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "core/kvcomp/dtype.h"
#include "core/kvcomp/internal/status_macros.h"

namespace kvcomp::io {
namespace {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

constexpr char kLayoutKey[] = "kvcomp.layout.";

std::optional<DType> KvDType(const std::string& s) {
  if (s == "F16") return DType::kFP16;
  if (s == "F32") return DType::kFP32;
  if (s == "BF16") return DType::kBF16;
  return std::nullopt;
}

const char* SafetensorsDType(DType d) {
  switch (d) {
    case DType::kFP16:
      return "F16";
    case DType::kFP32:
      return "F32";
    case DType::kBF16:
      return "BF16";
    case DType::kQ8_0:
    case DType::kQ4_0:
      break;  // WriteKvCache refuses them before any writer runs
  }
  return "?";
}

// Item sizes of the non-KV dtypes the format defines, so skipped tensors are checked too.
std::optional<uint64_t> OtherItemSize(const std::string& s) {
  if (s == "BOOL" || s == "U8" || s == "I8" || s == "F8_E5M2" || s == "F8_E4M3") return 1;
  if (s == "U16" || s == "I16") return 2;
  if (s == "U32" || s == "I32") return 4;
  if (s == "U64" || s == "I64" || s == "F64") return 8;
  return std::nullopt;
}

uint64_t ReadLe64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

struct Entry {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0;
  uint64_t end = 0;
};

}  // namespace

absl::StatusOr<KvCache> ParseSafetensors(absl::Span<const uint8_t> bytes, absl::string_view what,
                                         std::vector<std::string>* skipped) {
  auto bad = [&](auto&&... parts) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": safetensors: ", parts...));
  };
  if (bytes.size() < 8) return bad("truncated: ", bytes.size(), " bytes, no header length");
  const uint64_t n = ReadLe64(bytes.data());
  if (n > kSafetensorsMaxHeaderBytes) {
    return bad("header length ", n, " is above the limit of ", kSafetensorsMaxHeaderBytes);
  }
  if (n > bytes.size() - 8) {
    return bad("truncated: header of ", n, " bytes but only ", bytes.size() - 8, " follow");
  }
  const std::string text(reinterpret_cast<const char*>(bytes.data() + 8), n);
  if (text.empty() || text[0] != '{') return bad("header does not start with '{'");
  json header;
  try {
    header = json::parse(text);
  } catch (const json::exception& e) {
    return bad("header is not valid JSON: ", e.what());
  }
  if (!header.is_object()) return bad("header is not a JSON object");
  std::map<std::string, std::string> metadata;
  std::vector<Entry> entries;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const json& v = it.value();
    if (it.key() == "__metadata__") {
      if (!v.is_object()) return bad("__metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string())
          return bad("__metadata__ value '", m.key(), "' is not a string");
        metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    Entry e;
    e.name = it.key();
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") ||
        !v.contains("data_offsets")) {
      return bad("tensor '", e.name, "' needs dtype, shape and data_offsets");
    }
    if (!v["dtype"].is_string()) return bad("tensor '", e.name, "': dtype is not a string");
    e.dtype = v["dtype"].get<std::string>();
    if (!v["shape"].is_array()) return bad("tensor '", e.name, "': shape is not an array");
    uint64_t count = 1;
    for (const json& d : v["shape"]) {
      if (!d.is_number_unsigned() && !(d.is_number_integer() && d.get<int64_t>() >= 0)) {
        return bad("tensor '", e.name, "': shape holds a non-negative-integer");
      }
      const uint64_t dim = d.get<uint64_t>();
      if (dim > (uint64_t{1} << 40) || (dim && count > (uint64_t{1} << 48) / dim)) {
        return bad("tensor '", e.name, "': absurd shape");
      }
      count *= dim;
      e.shape.push_back(static_cast<int64_t>(dim));
    }
    const json& off = v["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() ||
        !off[1].is_number_unsigned()) {
      return bad("tensor '", e.name, "': data_offsets must be two non-negative integers");
    }
    e.begin = off[0].get<uint64_t>();
    e.end = off[1].get<uint64_t>();
    if (e.end < e.begin) return bad("tensor '", e.name, "': data_offsets end before begin");
    std::optional<uint64_t> item;
    if (auto d = KvDType(e.dtype)) {
      item = DTypeSize(*d);
    } else {
      item = OtherItemSize(e.dtype);
    }
    if (!item) return bad("tensor '", e.name, "': unknown dtype '", e.dtype, "'");
    if (e.end - e.begin != count * *item) {
      return bad("tensor '", e.name, "': data_offsets span ", e.end - e.begin,
                 " bytes, shape x itemsize is ", count * *item);
    }
    entries.push_back(std::move(e));
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  const uint64_t buffer = bytes.size() - 8 - n;
  uint64_t expect = 0;
  for (const Entry& e : entries) {
    if (e.begin != expect) {
      return bad("tensor '", e.name, "' starts at ", e.begin, ", expected ", expect,
                 e.begin < expect ? " (overlap)" : " (gap)");
    }
    expect = e.end;
  }
  if (expect > buffer)
    return bad("truncated: tensors need ", expect, " bytes, ", buffer, " follow");
  if (expect < buffer) return bad(buffer - expect, " trailing bytes after the last tensor");
  const uint8_t* data = bytes.data() + 8 + n;
  KvCache cache;
  for (const Entry& e : entries) {
    const std::optional<DType> dtype = KvDType(e.dtype);
    if (!dtype) {
      if (ParseTensorName(e.name)) {
        return bad("tensor '", e.name, "' is ", e.dtype, "; a KV tensor must be F16, F32 or BF16");
      }
      if (skipped) skipped->push_back(absl::StrCat(e.name, " (", e.dtype, ")"));
      continue;
    }
    NamedTensor t;
    t.name = e.name;
    t.tensor.meta.dtype = *dtype;
    t.tensor.meta.shape = e.shape;
    ApplyNameToMeta(e.name, &t.tensor.meta);
    if (auto m = metadata.find(absl::StrCat(kLayoutKey, e.name)); m != metadata.end()) {
      if (m->second == "token_major") {
        t.tensor.meta.layout = Layout::kTokenMajor;
      } else if (m->second != "head_major") {
        return bad("tensor '", e.name, "': unknown layout '", m->second, "'");
      }
    }
    t.tensor.bytes.assign(data + e.begin, data + e.end);
    // The rest of the meta (rank, heads) is checked by the codec's own view.
    if (auto view = TensorView::Make(t.tensor.meta, t.tensor.bytes); !view.ok()) {
      return bad("tensor '", e.name, "': ", view.status().message());
    }
    cache.push_back(std::move(t));
  }
  return cache;
}

absl::Status EncodeSafetensors(const KvCache& cache, Sink& sink) {
  ordered_json header = ordered_json::object();
  ordered_json metadata = ordered_json::object();
  std::set<std::string> seen;
  uint64_t offset = 0;
  for (const NamedTensor& t : cache) {
    if (t.name.empty() || t.name == "__metadata__" || !seen.insert(t.name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("safetensors: tensor name '", t.name, "' is empty, reserved or repeated"));
    }
    ordered_json e = ordered_json::object();
    e["dtype"] = SafetensorsDType(t.tensor.meta.dtype);
    e["shape"] = t.tensor.meta.shape;
    e["data_offsets"] = {offset, offset + t.tensor.bytes.size()};
    offset += t.tensor.bytes.size();
    header[t.name] = std::move(e);
    if (t.tensor.meta.layout == Layout::kTokenMajor) {
      metadata[absl::StrCat(kLayoutKey, t.name)] = "token_major";
    }
  }
  if (!metadata.empty()) header["__metadata__"] = std::move(metadata);
  std::string text = header.dump();
  text.resize((text.size() + 7) / 8 * 8, ' ');
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(uint64_t{text.size()} >> (8 * i));
  KV_RETURN_IF_ERROR(sink.Write(len));
  KV_RETURN_IF_ERROR(
      sink.Write(absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(text.data()), text.size())));
  for (const NamedTensor& t : cache) KV_RETURN_IF_ERROR(sink.Write(t.tensor.bytes));
  return absl::OkStatus();
}

absl::StatusOr<KvCache> ReadSafetensorsFile(const std::string& path,
                                            std::vector<std::string>* skipped) {
  KV_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, ReadFileBytes(path));
  return ParseSafetensors(bytes, path, skipped);
}

absl::Status WriteSafetensorsFile(const std::string& path, const KvCache& cache) {
  return WriteFileAtomic(path, [&](Sink& sink) { return EncodeSafetensors(cache, sink); });
}

}  // namespace kvcomp::io

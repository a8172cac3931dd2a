#include "client/io/sidecar.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"

namespace kvcomp::io {

absl::StatusOr<Sidecar> ParseSidecar(absl::string_view text, absl::string_view what) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": bad kvcomp sidecar: ", why));
  };
  const nlohmann::json j = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded()) return bad("not valid JSON");
  if (!j.is_object() || !j.contains("kvcomp_sidecar") || j["kvcomp_sidecar"] != 1) {
    return bad("expected an object with \"kvcomp_sidecar\": 1");
  }
  Sidecar out;
  if (!j.contains("tensors")) return out;
  if (!j["tensors"].is_object()) return bad("\"tensors\" must be an object");
  for (const auto& [name, v] : j["tensors"].items()) {
    if (!v.is_object()) return bad(absl::StrCat("entry '", name, "' must be an object"));
    SidecarEntry e;
    if (v.contains("dtype")) {
      if (v["dtype"] == "BF16") {
        e.bf16 = true;
      } else if (!(v["dtype"] == "FP16" || v["dtype"] == "FP32")) {
        return bad(absl::StrCat("entry '", name, "' has an unknown dtype"));
      }
    }
    if (v.contains("layout")) {
      if (v["layout"] == "token_major") {
        e.layout = Layout::kTokenMajor;
      } else if (!(v["layout"] == "head_major")) {
        return bad(absl::StrCat("entry '", name, "' has an unknown layout"));
      }
    }
    out[name] = e;
  }
  return out;
}

std::string MakeSidecar(const KvCache& cache) {
  nlohmann::json tensors = nlohmann::json::object();
  for (const NamedTensor& t : cache) {
    nlohmann::json e = nlohmann::json::object();
    if (t.tensor.meta.dtype == DType::kBF16) e["dtype"] = "BF16";
    if (t.tensor.meta.layout == Layout::kTokenMajor) e["layout"] = "token_major";
    if (!e.empty()) tensors[t.name] = e;
  }
  if (tensors.empty()) return "";
  nlohmann::json j = {{"kvcomp_sidecar", 1}, {"tensors", tensors}};
  return j.dump(1) + "\n";
}

}  // namespace kvcomp::io

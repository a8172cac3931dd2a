#include "tests/support/kv_dump.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"

namespace kvcomp::testing {
namespace fs = std::filesystem;

std::string SharedKvDir() { return KVCOMP_SHARED_KV_DIR; }

std::vector<std::string> ListKvRuns(const std::string& root) {
  std::vector<std::string> runs;
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return runs;
  for (const fs::directory_entry& entry : fs::directory_iterator(root, ec)) {
    if (entry.is_directory() && fs::exists(entry.path() / "manifest.json")) {
      runs.push_back(entry.path().string());
    }
  }
  std::sort(runs.begin(), runs.end());
  return runs;
}

absl::StatusOr<std::vector<v1::Tensor>> LoadKvDump(const std::string& dir,
                                                   absl::string_view datatype) {
  std::string manifest_dtype;
  if (datatype == "FP16") {
    manifest_dtype = "float16";
  } else if (datatype == "FP32") {
    manifest_dtype = "float32";
  } else {
    return absl::InvalidArgumentError(absl::StrCat("no dump files of datatype ", datatype));
  }
  const fs::path manifest_path = fs::path(dir) / "manifest.json";
  std::ifstream manifest_in(manifest_path);
  if (!manifest_in)
    return absl::NotFoundError(absl::StrCat("cannot open ", manifest_path.string()));
  nlohmann::json manifest = nlohmann::json::parse(manifest_in, nullptr, /*allow_exceptions=*/false);
  if (manifest.is_discarded() || !manifest.contains("files") || !manifest["files"].is_array()) {
    return absl::DataLossError(absl::StrCat(manifest_path.string(), ": no 'files' array"));
  }

  std::vector<v1::Tensor> tensors;
  try {
    for (const nlohmann::json& file : manifest["files"]) {
      if (file.at("dtype").get<std::string>() != manifest_dtype) continue;
      const std::string file_name = file.at("file").get<std::string>();
      v1::Tensor tensor;
      tensor.set_name(fs::path(file_name).stem().string());
      tensor.set_layer(file.at("layer").get<int32_t>());
      const std::string kind = file.at("tensor").get<std::string>();
      tensor.set_kind(kind == "K"   ? v1::TENSOR_KIND_K
                      : kind == "V" ? v1::TENSOR_KIND_V
                                    : v1::TENSOR_KIND_UNSPECIFIED);
      tensor.set_datatype(std::string(datatype));
      for (int64_t dim : file.at("shape").get<std::vector<int64_t>>()) tensor.add_shape(dim);
      tensor.set_layout(v1::TENSOR_LAYOUT_HEAD_MAJOR);

      const fs::path path = fs::path(dir) / file_name;
      std::ifstream in(path, std::ios::binary);
      if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path.string()));
      std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      const uint64_t expected = file.at("bytes").get<uint64_t>();
      if (bytes.size() != expected) {
        return absl::DataLossError(
            absl::StrCat(path.string(), ": ", bytes.size(), " bytes, manifest says ", expected));
      }
      tensor.set_raw_contents(std::move(bytes));
      tensors.push_back(std::move(tensor));
    }
  } catch (const nlohmann::json::exception& e) {
    return absl::DataLossError(absl::StrCat(manifest_path.string(), ": ", e.what()));
  }
  if (tensors.empty()) {
    return absl::NotFoundError(absl::StrCat(dir, ": no ", datatype, " tensors in the manifest"));
  }
  return tensors;
}

}  // namespace kvcomp::testing

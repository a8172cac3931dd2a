#include "client/io/kv_tensor.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace kvcomp::io {

std::optional<std::pair<int32_t, Kind>> ParseTensorName(absl::string_view name) {
  if (!absl::StartsWith(name, "layer") || name.size() < 8) return std::nullopt;
  absl::string_view rest = name.substr(5);
  const size_t us = rest.rfind('_');
  if (us == absl::string_view::npos || us + 2 != rest.size() || us == 0) return std::nullopt;
  absl::string_view digits = rest.substr(0, us);
  if (digits.size() > 9) return std::nullopt;
  for (char c : digits) {
    if (!absl::ascii_isdigit(c)) return std::nullopt;
  }
  int32_t layer = 0;
  if (!absl::SimpleAtoi(digits, &layer)) return std::nullopt;
  const char k = absl::ascii_tolower(rest.back());
  if (k == 'k') return std::make_pair(layer, Kind::kKey);
  if (k == 'v') return std::make_pair(layer, Kind::kValue);
  return std::nullopt;
}

std::string CanonicalTensorName(int32_t layer, Kind kind, size_t index) {
  if (layer < 0 || kind == Kind::kUnspecified) return absl::StrCat("tensor", index);
  return absl::StrCat("layer", layer, kind == Kind::kKey ? "_k" : "_v");
}

void ApplyNameToMeta(absl::string_view name, TensorMeta* meta) {
  if (auto parsed = ParseTensorName(name)) {
    meta->layer = parsed->first;
    meta->kind = parsed->second;
  }
}

bool IsSafeTensorName(absl::string_view name) {
  if (name.empty() || name.size() > 200 || name == "." || name == "..") return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && c != '_' && c != '.' && c != '-') return false;
  }
  return true;
}

}  // namespace kvcomp::io

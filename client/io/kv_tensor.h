// A KV cache as the client sees it on disk: an ordered list of named tensors.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "core/kvcomp/tensor.h"

namespace kvcomp::io {

// One tensor of a cache. `name` is how the file format calls it ("layer3_k"); layer and
// kind live in `tensor.meta` (layer -1 / Kind::kUnspecified when the name does not say).
struct NamedTensor {
  std::string name;
  Tensor tensor;
};

using KvCache = std::vector<NamedTensor>;

// "layer{L}_k" / "layer{L}_v" (case-insensitive k/v) -> {L, kind}; nullopt for other names.
std::optional<std::pair<int32_t, Kind>> ParseTensorName(absl::string_view name);

// The canonical name of a layered tensor: "layer3_k"; "tensor{index}" when the layer or the
// kind is unknown.
std::string CanonicalTensorName(int32_t layer, Kind kind, size_t index);

// Fills meta.layer / meta.kind from the name when it has the layer{L}_{k,v} form.
void ApplyNameToMeta(absl::string_view name, TensorMeta* meta);

// A name that is safe as a file name or archive member: non-empty, at most 200 bytes,
// only [A-Za-z0-9_.-], and not "." or "..".
bool IsSafeTensorName(absl::string_view name);

}  // namespace kvcomp::io

// Presets and policies: spec names that resolve to a Codec choosing a pipeline per tensor
// ("lossless", "bounded(cos=0.9999)", "mixed(2,lossless,quant(10))"). They are usable
// anywhere a spec is; the frame always records the concrete pipeline that was chosen.
//
// Adding one is one file in presets/ plus two lines in presets/preset_list.cc (its Register
// function declared, then called).
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kvcomp/codec.h"
#include "kvcomp/spec.h"

namespace kvcomp {

struct PresetInfo {
  absl::string_view name;
  absl::string_view summary;
  // Builds the codec from the node's arguments; nested specs resolve through MakeCodec.
  std::function<absl::StatusOr<std::unique_ptr<Codec>>(const SpecNode& node)> make;
};

class PresetRegistry {
 public:
  static const PresetRegistry& Get();
  void Register(PresetInfo info);  // aborts on a duplicate name
  const PresetInfo* Find(absl::string_view name) const;
  const std::vector<PresetInfo>& all() const { return presets_; }

 private:
  std::vector<PresetInfo> presets_;
};

// Resolves an already parsed spec: a lone preset node, or a pipeline of stages.
absl::StatusOr<std::unique_ptr<Codec>> MakeCodec(const SpecPipeline& spec);

// A codec that runs one fixed pipeline.
std::unique_ptr<Codec> MakePipelineCodec(Pipeline pipeline);

}  // namespace kvcomp

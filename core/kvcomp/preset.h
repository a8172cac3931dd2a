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
#include "core/kvcomp/codec.h"
#include "core/kvcomp/spec.h"

namespace kvcomp {

// Whether a preset's output is bit-exact: always, never, or as the specs it is given are.
enum class PresetExactness : uint8_t { kLossless, kLossy, kAsArguments };

struct PresetInfo {
  absl::string_view name;
  absl::string_view summary;
  // Builds the codec from the node's arguments; nested specs resolve through MakeCodec.
  std::function<absl::StatusOr<std::unique_ptr<Codec>>(const SpecNode& node)> make;
  // For the codec catalogue (`kvcomp codecs`): how a spec writes it, e.g. "mixed(N,FIRST,REST)".
  absl::string_view usage;
  PresetExactness exactness = PresetExactness::kLossy;
  bool policy = false;  // routes each tensor to one of the specs it is given
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

// The stage registry: maps names (for specs) and persistent IDs (for frames) to stages.
#pragma once

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/kvcomp/spec.h"
#include "core/kvcomp/stage.h"

namespace kvcomp {

class StageRegistry {
 public:
  // The process-wide registry holding every stage listed in stage_list.cc.
  static const StageRegistry& Get();

  // Aborts on a duplicate name or ID: that is a programming error caught by any test.
  void Register(StageInfo info);

  const StageInfo* FindByName(absl::string_view name) const;
  const StageInfo* FindById(uint8_t id) const;
  const std::vector<std::unique_ptr<StageInfo>>& all() const { return stages_; }

  // Builds a stage from a parsed spec node, checking every argument against the schema.
  absl::StatusOr<std::unique_ptr<Stage>> Create(const SpecNode& node) const;
  // Builds a stage from values read out of a frame.
  absl::StatusOr<std::unique_ptr<Stage>> Create(uint8_t id, const ParamValues& values) const;

 private:
  std::vector<std::unique_ptr<StageInfo>> stages_;
};

// Validates `values` against `info.params` (count, range, integrality).
absl::Status CheckParams(const StageInfo& info, const ParamValues& values);

}  // namespace kvcomp

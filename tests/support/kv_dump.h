// Loads ../shared/kv/<run> dump folders (raw layer{L}_{k,v}.f16|.f32 files listed in
// manifest.json) as wire tensors.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kvcomp/v1/kvcomp.pb.h"

namespace kvcomp::testing {

// The shared KV root this build was configured with (CMake cache KVCOMP_SHARED_KV).
std::string SharedKvDir();

// The run folders (those holding a manifest.json) under `root`, as full paths, sorted.
// Empty when `root` does not exist.
std::vector<std::string> ListKvRuns(const std::string& root);

// Every tensor of `datatype` ("FP16" reads the .f16 files, "FP32" the .f32 ones) in manifest
// order, named by file stem ("layer0_k"), head-major, with layer and kind from the manifest.
// Checks each file's size against the manifest.
absl::StatusOr<std::vector<v1::Tensor>> LoadKvDump(const std::string& dir,
                                                   absl::string_view datatype);

}  // namespace kvcomp::testing

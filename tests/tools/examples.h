// Real inputs and example specs shared by the fuzz seed tool and make_golden: slices of the
// real KV dumps, and specs that exercise every registered stage and preset, found from the
// registries so that a new codec gets seeds (and is reported when it has none).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kvcomp/codec.h"
#include "kvcomp/tensor.h"

namespace kvcomp::tools {

// The first `tokens` tokens of `<dir>/<run>/layer<L>_<k|v>` as a head-major [4, tokens, 8]
// tensor. FP16 and FP32 read the .f16 and .f32 files; BF16 rounds the .f32 values.
absl::StatusOr<Tensor> LoadKvSlice(const std::string& dir, const std::string& run, int layer,
                                   Kind kind, DType dtype, int64_t tokens);

struct Example {
  std::string spec;
  std::string covers;  // the stage or preset it was made for
};

// Specs that compress at least one probe tensor: each stage with its defaults and with each enum
// choice, alone and followed by each lossless stage; each preset with the argument patterns
// of the known presets. `uncovered` receives the stages and presets no example reached.
std::vector<Example> ExampleSpecs(const std::vector<Tensor>& probes,
                                  std::vector<std::string>* uncovered);

}  // namespace kvcomp::tools

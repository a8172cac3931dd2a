// Real inputs and example specs shared by the fuzz seed tool and make_golden: slices of the
// real KV dumps, and specs that exercise every registered stage and preset, found from the
// registries so that a new codec gets seeds (and is reported when it has none).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/kvcomp/codec.h"
#include "core/kvcomp/tensor.h"

namespace kvcomp::tools {

// The first `tokens` tokens of `<dir>/<run>/layer<L>_<k|v>` as a head-major [4, tokens, 8]
// tensor. FP16 and FP32 read the .f16 and .f32 files; BF16 rounds the .f32 values. Q8_0 and
// Q4_0 quantise the .f32 values as ggml does into a token-major [tokens, 1] tensor: one block
// of 32 values (4 heads x 8) a token, as a llama.cpp state file of that model would hold it.
absl::StatusOr<Tensor> LoadKvSlice(const std::string& dir, const std::string& run, int layer,
                                   Kind kind, DType dtype, int64_t tokens);

// ggml's reference quantisers (quantize_row_q8_0_ref, quantize_row_q4_0_ref): a float tensor
// whose last dim is a multiple of 32 becomes `to` blocks (that dim divided by 32).
Tensor QuantiseAsGgml(const Tensor& values, DType to);

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

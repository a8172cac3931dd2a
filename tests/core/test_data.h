// Test inputs for core tests: real KV dumps from ../shared/kv and adversarial bit patterns.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/kvcomp/tensor.h"

namespace kvcomp::testing {

struct NamedTensor {
  std::string name;  // "story_prose/layer0_k.f16"
  Tensor tensor;
};

// Every layer's K and V of every run under KVCOMP_SHARED_KV, in `dtype` (FP16 or FP32 as
// dumped, BF16 rounded from the FP32 dumps); empty when the folder is absent.
std::vector<NamedTensor> LoadSharedKv(DType dtype);
bool HaveSharedKv();

// A tensor of `shape` with random bits (every pattern, NaNs and infinities included).
Tensor RandomBitsTensor(DType dtype, std::vector<int64_t> shape, uint32_t seed,
                        Layout layout = Layout::kHeadMajor);

}  // namespace kvcomp::testing

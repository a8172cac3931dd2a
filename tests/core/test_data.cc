#include "tests/core/test_data.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

namespace kvcomp::testing {

bool HaveSharedKv() { return std::filesystem::is_directory(KVCOMP_SHARED_KV); }

std::vector<NamedTensor> LoadSharedKv(DType dtype) {
  std::vector<NamedTensor> out;
  if (!HaveSharedKv()) return out;
  // BF16: the FP32 dumps rounded to BF16 (nearest even), as the benchmarks make them.
  const std::string ext = dtype == DType::kFP16 ? ".f16" : ".f32";
  std::vector<std::filesystem::path> runs;
  for (const auto& e : std::filesystem::directory_iterator(KVCOMP_SHARED_KV)) {
    if (e.is_directory()) runs.push_back(e.path());
  }
  std::sort(runs.begin(), runs.end());
  for (const auto& run : runs) {
    for (int layer = 0;; ++layer) {
      bool found = false;
      for (const char* kv : {"k", "v"}) {
        const auto path = run / ("layer" + std::to_string(layer) + "_" + kv + ext);
        std::ifstream f(path, std::ios::binary);
        if (!f) continue;
        found = true;
        NamedTensor t;
        t.name = run.filename().string() + "/" + path.filename().string();
        t.tensor.bytes.assign(std::istreambuf_iterator<char>(f), {});
        if (dtype == DType::kBF16) {
          std::vector<float> v(t.tensor.bytes.size() / 4);
          std::memcpy(v.data(), t.tensor.bytes.data(), v.size() * 4);
          std::vector<uint16_t> h(v.size());
          FloatToBf16(v.data(), h.data(), v.size());
          t.tensor.bytes.resize(h.size() * 2);
          std::memcpy(t.tensor.bytes.data(), h.data(), t.tensor.bytes.size());
        }
        t.tensor.meta.dtype = dtype;
        t.tensor.meta.kind = kv[0] == 'k' ? Kind::kKey : Kind::kValue;
        t.tensor.meta.layer = layer;
        const int64_t tokens = static_cast<int64_t>(t.tensor.bytes.size() / DTypeSize(dtype) / 32);
        t.tensor.meta.shape = {4, tokens, 8};
        out.push_back(std::move(t));
      }
      if (!found) break;
    }
  }
  return out;
}

Tensor RandomBitsTensor(DType dtype, std::vector<int64_t> shape, uint32_t seed, Layout layout) {
  Tensor t;
  t.meta.dtype = dtype;
  t.meta.layout = layout;
  t.meta.shape = std::move(shape);
  t.bytes.resize(t.meta.NumBytes());
  std::mt19937 rng(seed);
  for (auto& b : t.bytes) b = static_cast<uint8_t>(rng());
  return t;
}

}  // namespace kvcomp::testing

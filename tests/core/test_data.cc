#include "test_data.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

namespace kvcomp::testing {

bool HaveSharedKv() { return std::filesystem::is_directory(KVCOMP_SHARED_KV); }

std::vector<NamedTensor> LoadSharedKv(DType dtype) {
  std::vector<NamedTensor> out;
  if (!HaveSharedKv()) return out;
  const std::string ext = dtype == DType::kFP32 ? ".f32" : ".f16";
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

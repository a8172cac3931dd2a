#include "client/cli/workload.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/cli/common.h"
#include "client/io/kv_io.h"
#include "core/kvcomp/synth/llama_synth.h"

namespace kvcomp::cli {

absl::StatusOr<io::KvCache> LoadWorkload(const std::string& data, std::string* description) {
  if (!absl::StartsWith(data, "llama:") && data != "llama") {
    auto cache = io::ReadKvCache(data);
    if (!cache.ok()) return cache.status();
    if (cache->empty()) return absl::InvalidArgumentError(absl::StrCat(data, ": no tensors"));
    uint64_t raw = 0;
    for (const auto& t : *cache) raw += t.tensor.bytes.size();
    *description = absl::StrCat(data, " (", cache->size(), " tensors, ", HumanBytes(raw), ")");
    return cache;
  }
  synth::LlamaShape shape;
  shape.layers = 1;
  shape.tokens = 512;
  const absl::string_view params =
      absl::string_view(data).substr(data.size() > 6 ? 6 : data.size());
  for (absl::string_view kv : absl::StrSplit(params, ',', absl::SkipEmpty())) {
    const std::pair<std::string, std::string> p = absl::StrSplit(kv, absl::MaxSplits('=', 1));
    if (p.first == "dtype") {
      auto d = ParseDTypeFlag(p.second);
      if (!d) return absl::InvalidArgumentError(absl::StrCat("bad dtype '", p.second, "'"));
      shape.dtype = *d;
      continue;
    }
    int64_t v = 0;
    if (!absl::SimpleAtoi(p.second, &v) || v < 1) {
      return absl::InvalidArgumentError(absl::StrCat("bad value in '", kv, "' (need KEY=N, N>=1)"));
    }
    if (p.first == "layers" && v <= 1024) {
      shape.layers = static_cast<int>(v);
    } else if (p.first == "heads" && v <= 1024) {
      shape.kv_heads = static_cast<int>(v);
    } else if (p.first == "dim" && v >= 2 && v <= 4096 && v % 2 == 0) {
      shape.head_dim = static_cast<int>(v);
    } else if (p.first == "tokens" && v <= (1 << 20)) {
      shape.tokens = static_cast<int>(v);
    } else if (p.first == "seed") {
      shape.seed = static_cast<uint64_t>(v);
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "bad generated shape '", kv, "' (keys: layers, heads, dim (even), tokens, dtype, seed)"));
    }
  }
  if (uint64_t{1} * shape.layers * shape.kv_heads * shape.head_dim * shape.tokens > (1u << 30)) {
    return absl::InvalidArgumentError("generated shape above 2^30 values per kind");
  }
  io::KvCache cache;
  for (int layer = 0; layer < shape.layers; ++layer) {
    for (Kind kind : {Kind::kKey, Kind::kValue}) {
      cache.push_back(
          {io::CanonicalTensorName(layer, kind, 0), synth::LlamaKv(shape, layer, kind)});
    }
  }
  *description =
      absl::StrCat("generated Llama-shaped ", shape.layers, " layers x K/V [", shape.kv_heads, ",",
                   shape.tokens, ",", shape.head_dim, "] ", DTypeName(shape.dtype), ", ",
                   HumanBytes(cache[0].tensor.bytes.size()), " per tensor");
  return cache;
}

double Percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  const double rank = std::ceil(q * static_cast<double>(sorted.size()));
  size_t i = rank < 1 ? 0 : static_cast<size_t>(rank) - 1;
  if (i >= sorted.size()) i = sorted.size() - 1;
  return sorted[i];
}

Progress::Progress(std::string label, bool enabled, std::function<double()> fraction) {
  if (!enabled || !isatty(STDOUT_FILENO)) return;
  thread_ = std::thread([this, label = std::move(label), fraction = std::move(fraction)] {
    constexpr int kWidth = 30;
    while (!stop_.load()) {
      double f = fraction();
      f = f < 0 ? 0 : (f > 1 ? 1 : f);
      const int filled = static_cast<int>(f * kWidth);
      std::fprintf(stderr, "\r%s [%s%s] %3d%%", label.c_str(), std::string(filled, '#').c_str(),
                   std::string(kWidth - filled, '.').c_str(), static_cast<int>(f * 100));
      std::fflush(stderr);
      for (int i = 0; i < 4 && !stop_.load(); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
    std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
  });
}

Progress::~Progress() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

}  // namespace kvcomp::cli

#include "bench/bench_data.h"

#include "core/kvcomp/codec.h"

#include <malloc.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/kvcomp/synth/llama_synth.h"

namespace kvcomp::bench {

double ThreadSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

uint64_t Dataset::raw_bytes() const {
  uint64_t n = 0;
  for (const Item& it : items) n += it.t.bytes.size();
  return n;
}

namespace {
std::vector<uint8_t> ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}
}  // namespace

Dataset LoadSharedKv(const std::string& dir, DType dtype) {
  const bool bf16 = dtype == DType::kBF16;
  Dataset ds{std::string("shared/kv ") +
                 (bf16 ? "BF16 (real, from the FP32 dumps)" : "FP16 (real)") +
                 ", 4 runs x 5 layers",
             {}};
  for (const char* run :
       {"story_prose", "technical_prose", "mmlu_fewshot_q1", "generated_greedy"}) {
    for (int l = 0; l < 5; ++l) {
      for (char kind : {'k', 'v'}) {
        const std::string path =
            dir + "/" + run + "/layer" + std::to_string(l) + "_" + kind + (bf16 ? ".f32" : ".f16");
        std::vector<uint8_t> bytes = ReadFile(path);
        if (bytes.empty()) continue;
        if (bf16) {
          std::vector<uint8_t> half(bytes.size() / 2);
          FloatToBf16(reinterpret_cast<const float*>(bytes.data()),
                      reinterpret_cast<uint16_t*>(half.data()), bytes.size() / 4);
          bytes = std::move(half);
        }
        Item it;
        it.name = path;
        it.t.meta.dtype = dtype;
        it.t.meta.kind = kind == 'k' ? Kind::kKey : Kind::kValue;
        it.t.meta.layer = l;
        it.t.meta.shape = {4, static_cast<int64_t>(bytes.size() / 64), 8};
        it.t.bytes = std::move(bytes);
        ds.items.push_back(std::move(it));
      }
    }
  }
  return ds;
}

Dataset Synth(DType dtype, const std::vector<int>& layers) {
  synth::LlamaShape shape;
  shape.dtype = dtype;
  Dataset ds{std::string("Llama-3-8B-shaped ") + (dtype == DType::kFP16 ? "FP16" : "BF16") +
                 " (generated, layers " + absl::StrJoin(layers, ",") + ")",
             {}};
  for (int l : layers) {
    for (Kind k : {Kind::kKey, Kind::kValue}) {
      ds.items.push_back({"synth", synth::LlamaKv(shape, l, k)});
    }
  }
  return ds;
}

std::vector<int> ParseLayers(const std::string& text) {
  std::vector<int> layers;
  if (text == "all") {
    for (int l = 0; l < 32; ++l) layers.push_back(l);
    return layers;
  }
  for (absl::string_view p : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    layers.push_back(std::atoi(std::string(p).c_str()));
  }
  return layers;
}

bool ParseBenchArgs(int argc, char** argv, const char* program, BenchOptions* o) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--kv") {
      o->kv_dir = next();
    } else if (a == "--rounds") {
      o->rounds = std::max(1, std::atoi(next().c_str()));
    } else if (a == "--layers") {
      const std::string v = next();
      o->layers = v == "none" ? std::vector<int>{} : ParseLayers(v);
    } else if (a == "--codecs") {
      o->specs = absl::StrSplit(next(), ';', absl::SkipEmpty());
    } else if (a == "--no-peers") {
      o->peers = false;
    } else {
      std::fprintf(stderr,
                   "usage: %s [--kv DIR] [--rounds N] [--layers L,L|all|none] "
                   "[--codecs 'spec;spec'] [--no-peers]\n",
                   program);
      return false;
    }
  }
  return true;
}

absl::Status DecompressReusing(absl::Span<const uint8_t> frame, Tensor* out) {
  auto meta = DecompressInto(frame, [out](const TensorMeta& m) {
    out->bytes.resize(m.NumBytes());
    return absl::MakeSpan(out->bytes);
  });
  if (!meta.ok()) return meta.status();
  out->meta = *std::move(meta);
  return absl::OkStatus();
}

void KeepFreedMemory() {
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

}  // namespace kvcomp::bench

// Google Benchmark per stage: each lossless pipeline of one stage (plus the transforms it
// needs) on one generated Llama-3-8B-shaped FP16 layer (8 x 4096 x 128), encode and decode.
// Bytes/s are raw tensor bytes. Run: build/bench/stage_bench --benchmark_min_time=0.5
#include <benchmark/benchmark.h>

#include "core/kvcomp/codec.h"
#include "core/kvcomp/synth/llama_synth.h"

namespace {

const kvcomp::Tensor& Layer(kvcomp::Kind kind) {
  static const kvcomp::Tensor k = kvcomp::synth::LlamaKv({}, 0, kvcomp::Kind::kKey);
  static const kvcomp::Tensor v = kvcomp::synth::LlamaKv({}, 0, kvcomp::Kind::kValue);
  return kind == kvcomp::Kind::kKey ? k : v;
}

// Times `encode` (the layer to its frame) over the benchmark's iterations; an error skips the
// benchmark with its message.
template <typename Encode>
void TimeEncoding(benchmark::State& state, const kvcomp::Tensor& t, Encode encode) {
  size_t out = 0;
  for (auto _ : state) {
    absl::StatusOr<std::vector<uint8_t>> frame = encode(t.view());
    if (!frame.ok()) {
      state.SkipWithError(std::string(frame.status().message()).c_str());
      return;
    }
    out = frame->size();
    benchmark::DoNotOptimize(frame->data());
  }
  state.SetBytesProcessed(state.iterations() * t.bytes.size());
  state.counters["ratio"] = static_cast<double>(t.bytes.size()) / out;
}

void BM_Encode(benchmark::State& state, const char* spec, kvcomp::Kind kind) {
  auto pipeline = kvcomp::Pipeline::FromSpec(spec);
  if (!pipeline.ok()) {
    state.SkipWithError(std::string(pipeline.status().message()).c_str());
    return;
  }
  TimeEncoding(state, Layer(kind),
               [&](const kvcomp::TensorView& v) { return pipeline->Encode(v); });
}

void BM_Decode(benchmark::State& state, const char* spec, kvcomp::Kind kind) {
  auto pipeline = kvcomp::Pipeline::FromSpec(spec);
  if (!pipeline.ok()) {
    state.SkipWithError(std::string(pipeline.status().message()).c_str());
    return;
  }
  const kvcomp::Tensor& t = Layer(kind);
  const auto frame = *pipeline->Encode(t.view());
  std::vector<uint8_t> out;
  for (auto _ : state) {
    auto back = kvcomp::DecompressInto(frame, [&out](const kvcomp::TensorMeta& m) {
      out.resize(m.NumBytes());
      return absl::MakeSpan(out);
    });
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * t.bytes.size());
}

// A whole codec (a preset such as bounded(...), which picks its stages per tensor), compress only.
void BM_Compress(benchmark::State& state, const char* spec, kvcomp::Kind kind) {
  auto codec = kvcomp::MakeCodec(spec);
  if (!codec.ok()) {
    state.SkipWithError(std::string(codec.status().message()).c_str());
    return;
  }
  TimeEncoding(state, Layer(kind),
               [&](const kvcomp::TensorView& v) -> absl::StatusOr<std::vector<uint8_t>> {
                 absl::StatusOr<kvcomp::CompressedTensor> out = (*codec)->Compress(v);
                 if (!out.ok()) return out.status();
                 return std::move(out->frame);
               });
}

#define KV_BENCH(name, spec)                                          \
  BENCHMARK_CAPTURE(BM_Encode, name##_K, spec, kvcomp::Kind::kKey);   \
  BENCHMARK_CAPTURE(BM_Decode, name##_K, spec, kvcomp::Kind::kKey);   \
  BENCHMARK_CAPTURE(BM_Encode, name##_V, spec, kvcomp::Kind::kValue); \
  BENCHMARK_CAPTURE(BM_Decode, name##_V, spec, kvcomp::Kind::kValue)

KV_BENCH(huff, "huff");
KV_BENCH(dedupe_huff, "dedupe+huff");
KV_BENCH(planes_zstd1, "planes+zstd(1)");
KV_BENCH(gear_zstd1, "gear+zstd(1)");
KV_BENCH(xor_huff, "xor+huff");
KV_BENCH(delta_huff, "delta+huff");
// The lossy coders behind bounded(...), at a step near rel_mae=0.01 on these layers.
KV_BENCH(uquant_qhuff, "uquant(0.03)+qhuff");
KV_BENCH(uquant_planes_zstd1, "uquant(0.03)+planes+zstd(1)");
BENCHMARK_CAPTURE(BM_Compress, bounded_K, "bounded(cos=0.9999,rel_mae=0.01)", kvcomp::Kind::kKey);
BENCHMARK_CAPTURE(BM_Compress, bounded_V, "bounded(cos=0.9999,rel_mae=0.01)", kvcomp::Kind::kValue);
KV_BENCH(cm, "cm");
KV_BENCH(zstd3, "zstd(3)");

}  // namespace

BENCHMARK_MAIN();

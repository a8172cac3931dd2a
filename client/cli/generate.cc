// kvcomp generate -o OUT: a synthetic Llama-shaped KV cache (core's kvcomp::synth model), for
// demos and scale tests when no real dump is at hand. Synthetic data: never judge ratios by it.
#include <iostream>

#include "absl/strings/str_cat.h"
#include "client/cli/common.h"
#include "client/io/kv_io.h"
#include "core/kvcomp/synth/llama_synth.h"

namespace kvcomp::cli {
namespace {

struct GenerateFlags {
  std::string output;
  synth::LlamaShape shape;
  std::string dtype = "fp16";
  bool force = false;
  bool quiet = false;
};

int RunGenerate(GenerateFlags f) {
  f.shape.dtype = *ParseDTypeFlag(f.dtype);
  io::KvCache cache;
  for (int layer = 0; layer < f.shape.layers; ++layer) {
    for (Kind kind : {Kind::kKey, Kind::kValue}) {
      cache.push_back(
          {io::CanonicalTensorName(layer, kind, 0), synth::LlamaKv(f.shape, layer, kind)});
    }
  }
  io::WriteOptions write;
  write.overwrite = f.force;
  if (absl::Status s = io::WriteKvCache(f.output, cache, write); !s.ok()) {
    return Fail("generate", kExitInput, s);
  }
  if (!f.quiet) {
    uint64_t raw = 0;
    for (const auto& t : cache) raw += t.tensor.bytes.size();
    std::cout << "wrote " << f.output << ": synthetic Llama-shaped cache, " << f.shape.layers
              << " layers x K/V, [" << f.shape.kv_heads << "," << f.shape.tokens << ","
              << f.shape.head_dim << "] " << DTypeName(f.shape.dtype) << ", " << HumanBytes(raw)
              << "\n";
  }
  return kExitOk;
}

}  // namespace

Command AddGenerateCommand(CLI::App& root) {
  auto flags = std::make_shared<GenerateFlags>();
  flags->shape.layers = 8;
  flags->shape.tokens = 512;
  CLI::App* app = root.add_subcommand(
      "generate",
      "Write a synthetic Llama-shaped KV cache (dump folder, .npz or .npy by extension). "
      "Synthetic: for demos and scale tests, not for judging ratios");
  app->add_option("-o,--output", flags->output, "dump folder, .npz or .npy to write")->required();
  app->add_option("--layers", flags->shape.layers)
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  app->add_option("--kv-heads", flags->shape.kv_heads)
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  app->add_option("--head-dim", flags->shape.head_dim)
      ->capture_default_str()
      ->check(CLI::Range(2, 4096));
  app->add_option("--tokens", flags->shape.tokens)
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  app->add_option("--seed", flags->shape.seed)->capture_default_str();
  app->add_option("--dtype", flags->dtype)
      ->capture_default_str()
      ->check(CLI::IsMember({"fp16", "fp32", "bf16"}, CLI::ignore_case));
  AddOutputFlags(app, &flags->force, &flags->quiet, "OUT");
  return {app, [flags] { return RunGenerate(*flags); }};
}

}  // namespace kvcomp::cli

// kvcomp decompress IN.kvc -o DIR|FILE.npz|FILE.npy --server HOST:PORT
#include <iostream>
#include <set>

#include "absl/strings/str_cat.h"
#include "cli/common.h"
#include "cli/workload.h"
#include "io/file_util.h"
#include "io/kv_io.h"
#include "kvcomp/frame.h"

namespace kvcomp::cli {
namespace {

struct DecompressFlags {
  std::string input;
  std::string output;
  bool force = false;
  bool quiet = false;
  ServerFlags server;
};

int RunDecompress(const DecompressFlags& f) {
  constexpr absl::string_view kCmd = "decompress";
  auto kvc = ReadKvcFile(f.input);
  if (!kvc.ok()) return Fail(kCmd, kExitInput, kvc.status());
  // Names come from each frame's layer and kind, as the original files were named.
  std::vector<client::FrameRef> refs;
  std::vector<TensorMeta> metas;
  std::set<std::string> names;
  for (size_t i = 0; i < kvc->frames.size(); ++i) {
    const TensorMeta& m = kvc->headers[i].header.meta;
    std::string name = io::CanonicalTensorName(m.layer, m.kind, i);
    if (!names.insert(name).second) name = absl::StrCat("tensor", i);
    refs.push_back({name, kvc->frames[i]});
    metas.push_back(m);
  }
  if (io::PathExists(f.output) && !f.force) {
    return Fail(kCmd, kExitInput,
                absl::AlreadyExistsError(
                    absl::StrCat(f.output, " already exists (pass --force to replace it)")));
  }
  auto client = Connect(f.server);
  if (!client.ok()) return Fail(kCmd, kExitServer, client.status());
  io::KvCache cache;
  const auto batches = Batches(refs.size(), PayloadBudget(f.server), [&](size_t i) {
    return metas[i].NumBytes() + refs[i].frame.size();
  });
  {
    std::atomic<size_t> done{0};
    Progress progress("decompress", !f.quiet && batches.size() > 1,
                      [&] { return static_cast<double>(done.load()) / batches.size(); });
    for (auto [begin, end] : batches) {
      auto part = (*client)->Decompress(absl::MakeConstSpan(refs.data() + begin, end - begin));
      if (!part.ok()) return Fail(kCmd, kExitServer, part.status());
      for (auto& t : *part) cache.push_back(std::move(t));
      ++done;
    }
  }
  for (size_t i = 0; i < cache.size(); ++i) {
    const TensorMeta& got = cache[i].tensor.meta;
    if (got.shape != metas[i].shape || got.dtype != metas[i].dtype || got.layer != metas[i].layer ||
        got.kind != metas[i].kind) {
      return Fail(kCmd, kExitServer,
                  absl::DataLossError(absl::StrCat("server returned tensor ", i,
                                                   " with metadata unlike its frame header")));
    }
    cache[i].name = refs[i].name;
  }
  io::WriteOptions write;
  write.overwrite = f.force;
  absl::Status s = io::WriteKvCache(f.output, cache, write);
  if (!s.ok()) return Fail(kCmd, kExitInput, s);
  if (!f.quiet) {
    uint64_t raw = 0;
    for (const auto& t : cache) raw += t.tensor.bytes.size();
    std::cout << "wrote " << f.output << " (" << io::CacheFormatName(io::OutputFormat(f.output))
              << "): " << cache.size() << " tensors, " << raw << " bytes\n";
  }
  return kExitOk;
}

}  // namespace

Command AddDecompressCommand(CLI::App& root) {
  auto flags = std::make_shared<DecompressFlags>();
  CLI::App* app = root.add_subcommand(
      "decompress",
      "Decompress a .kvc file through the server. OUT ending in .npz, .npy or .safetensors "
      "gets that format; anything else becomes a dump folder (layer{L}_{k,v}.f16/.f32 + "
      "manifest.json). "
      "Written atomically: nothing appears unless the whole output was written.");
  app->add_option("input", flags->input, "the .kvc file")->required();
  app->add_option("-o,--output", flags->output, "dump folder, .npz, .npy or .safetensors to write")
      ->required();
  AddOutputFlags(app, &flags->force, &flags->quiet,
                 "OUT (a folder only if it holds a manifest.json)");
  AddServerFlags(app, &flags->server);
  return {app, [flags] { return RunDecompress(*flags); }};
}

}  // namespace kvcomp::cli

// kvcomp decompress IN.kvc -o DIR|FILE.npz|FILE.npy --server HOST:PORT
#include <atomic>
#include <iostream>
#include <set>

#include "absl/strings/str_cat.h"
#include "client/cli/common.h"
#include "client/cli/workload.h"
#include "client/io/file_util.h"
#include "client/io/kv_io.h"
#include "core/kvcomp/frame.h"

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
  // One tensor per (layer, kind) group of frames (token blocks) or per unlayered frame; names
  // come from layer and kind, as the original files were named.
  const std::vector<std::vector<size_t>> tensors = TensorFrames(kvc->headers);
  std::vector<client::FrameRef> refs;
  std::vector<TensorMeta> metas;
  std::vector<std::vector<uint8_t>> gathered;  // blocks of a tensor not adjacent in the file
  gathered.reserve(tensors.size());
  std::set<std::string> names;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const std::vector<size_t>& idx = tensors[i];
    TensorMeta m = kvc->headers[idx[0]].header.meta;
    const size_t axis = TokenAxis(m);
    bool adjacent = true;
    for (size_t j = 1; j < idx.size(); ++j) {
      const TensorMeta& b = kvc->headers[idx[j]].header.meta;
      if (!SameTensorApartFromTokens(kvc->headers[idx[0]].header.meta, b)) {
        return Fail(
            kCmd, kExitInput,
            absl::DataLossError(absl::StrCat(
                f.input, ": frame ", idx[j], " is a token block of frame ", idx[0],
                "'s tensor but disagrees with it: ", b.ShapeString(), " ", DTypeName(b.dtype),
                " after ", kvc->headers[idx[0]].header.meta.ShapeString(), " ",
                DTypeName(kvc->headers[idx[0]].header.meta.dtype))));
      }
      m.shape[axis] += b.shape[axis];
      adjacent = adjacent && idx[j] == idx[j - 1] + 1;
    }
    absl::Span<const uint8_t> span;
    if (adjacent) {
      const auto first = kvc->frames[idx.front()], last = kvc->frames[idx.back()];
      span = absl::MakeConstSpan(first.data(), last.data() + last.size() - first.data());
    } else {
      std::vector<uint8_t>& bytes = gathered.emplace_back();
      for (size_t j : idx) bytes.insert(bytes.end(), kvc->frames[j].begin(), kvc->frames[j].end());
      span = bytes;
    }
    std::string name = io::CanonicalTensorName(m.layer, m.kind, i);
    if (!names.insert(name).second) name = absl::StrCat("tensor", i);
    refs.push_back({name, span});
    metas.push_back(m);
  }
  if (io::PathExists(f.output) && !f.force) {
    return Fail(kCmd, kExitInput,
                absl::AlreadyExistsError(
                    absl::StrCat(f.output, " already exists (pass --force to replace it)")));
  }
  std::atomic<double> answered_fraction{0};  // of a streamed call's chunks
  auto client = Connect(f.server, [&answered_fraction](size_t answered, size_t total) {
    answered_fraction = static_cast<double>(answered) / static_cast<double>(total);
  });
  if (!client.ok()) return Fail(kCmd, kExitServer, client.status());
  // One call: unary below the stream threshold, else a stream of chunks (client library).
  absl::StatusOr<io::KvCache> cache;
  {
    // On a terminal, a bar that the chunks of a streamed call move along.
    Progress progress("kvcomp decompress", true,
                      [&answered_fraction] { return answered_fraction.load(); });
    cache = (*client)->Decompress(refs);
  }
  if (!cache.ok()) return Fail(kCmd, kExitServer, cache.status());
  for (size_t i = 0; i < cache->size(); ++i) {
    const TensorMeta& got = (*cache)[i].tensor.meta;
    if (got.shape != metas[i].shape || got.dtype != metas[i].dtype || got.layer != metas[i].layer ||
        got.kind != metas[i].kind) {
      return Fail(kCmd, kExitServer,
                  absl::DataLossError(absl::StrCat("server returned tensor ", i,
                                                   " with metadata unlike its frame header")));
    }
    (*cache)[i].name = refs[i].name;
  }
  io::WriteOptions write;
  write.overwrite = f.force;
  write.side = kvc->side ? &*kvc->side : nullptr;  // a llama.cpp state's skeleton
  absl::Status s = io::WriteKvCache(f.output, *cache, write);
  if (!s.ok()) return Fail(kCmd, kExitInput, s);
  if (!f.quiet) {
    uint64_t raw = 0;
    for (const auto& t : *cache) raw += t.tensor.bytes.size();
    std::cout << "wrote " << f.output << " ("
              << io::CacheFormatName(io::OutputFormat(f.output, write.side))
              << "): " << cache->size() << " tensors, " << raw << " bytes\n";
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

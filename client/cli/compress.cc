// kvcomp compress INPUT -o OUT.kvc --codec SPEC --server HOST:PORT [--dtype fp16|fp32|bf16]
#include <iostream>

#include "absl/strings/str_cat.h"
#include "cli/common.h"
#include "cli/workload.h"
#include "io/file_util.h"
#include "io/kv_io.h"
#include "kvcomp/frame.h"

namespace kvcomp::cli {
namespace {

struct CompressFlags {
  std::string input;
  std::string output;
  std::string codec = "zstd(3)";
  std::string dtype;
  bool force = false;
  bool quiet = false;
  ServerFlags server;
};

int RunCompress(const CompressFlags& f) {
  constexpr absl::string_view kCmd = "compress";
  io::ReadOptions read;
  if (!f.dtype.empty()) read.dtype = ParseDTypeFlag(f.dtype);
  auto cache = io::ReadKvCache(f.input, read);
  if (!cache.ok()) return Fail(kCmd, kExitInput, cache.status());
  if (io::IsDirectory(f.output)) {
    return Fail(kCmd, kExitInput,
                absl::InvalidArgumentError(absl::StrCat(f.output, " is a directory")));
  }
  if (io::PathExists(f.output) && !f.force) {
    return Fail(kCmd, kExitInput,
                absl::AlreadyExistsError(
                    absl::StrCat(f.output, " already exists (pass --force to replace it)")));
  }
  auto client = Connect(f.server);
  if (!client.ok()) return Fail(kCmd, kExitServer, client.status());

  std::vector<client::CompressedTensor> compressed;
  const auto batches = Batches(cache->size(), PayloadBudget(f.server),
                               [&](size_t i) { return (*cache)[i].tensor.bytes.size(); });
  {
    // On a terminal, a bar over the batches (one RPC each).
    std::atomic<size_t> done{0};
    Progress progress("compress", !f.quiet && batches.size() > 1,
                      [&] { return static_cast<double>(done.load()) / batches.size(); });
    for (auto [begin, end] : batches) {
      auto result =
          (*client)->Compress(f.codec, absl::MakeConstSpan(cache->data() + begin, end - begin));
      if (!result.ok()) return Fail(kCmd, kExitServer, result.status());
      for (auto& t : result->tensors) compressed.push_back(std::move(t));
      ++done;
    }
  }
  std::vector<client::TensorReport> reports;
  for (size_t i = 0; i < compressed.size(); ++i) {
    // Every frame must be well-formed before it goes into the file.
    auto parsed = ParseFrame(compressed[i].frame);
    if (!parsed.ok() || parsed->frame_bytes != compressed[i].frame.size()) {
      return Fail(kCmd, kExitServer,
                  absl::DataLossError(absl::StrCat(
                      "server returned a malformed frame for '", (*cache)[i].name,
                      "': ", parsed.ok() ? "length mismatch" : parsed.status().ToString())));
    }
    reports.push_back(compressed[i].report);
    if (reports.back().name.empty()) reports.back().name = (*cache)[i].name;
  }
  if (!f.quiet) {
    std::cout << "kvcomp compress: " << f.input << " ("
              << io::CacheFormatName(*io::InputFormat(f.input)) << ", " << cache->size()
              << " tensors) via " << f.server.address << "\n";
    PrintReportTable(std::cout, reports);
  }
  absl::Status written = io::WriteFileAtomic(f.output, [&](io::Sink& sink) -> absl::Status {
    for (const auto& t : compressed) {
      if (absl::Status s = sink.Write(t.frame); !s.ok()) return s;
    }
    return absl::OkStatus();
  });
  if (!written.ok()) return Fail(kCmd, kExitInput, written);
  uint64_t total = 0;
  for (const auto& t : compressed) total += t.frame.size();
  if (!f.quiet) {
    std::cout << "wrote " << f.output << ": " << compressed.size() << " frames, " << total
              << " bytes\n";
  }
  return kExitOk;
}

}  // namespace

Command AddCompressCommand(CLI::App& root) {
  auto flags = std::make_shared<CompressFlags>();
  CLI::App* app = root.add_subcommand(
      "compress",
      "Compress a KV cache through the server into a .kvc file, printing per-tensor sizes "
      "and ratios, then the weighted K, V and KV totals");
  app->add_option("input", flags->input, "dump folder, .npy, .npz or .safetensors file")
      ->required();
  app->add_option("-o,--output", flags->output, "the .kvc file to write (atomically)")->required();
  app->add_option("--codec", flags->codec, "codec spec, e.g. 'zstd(3)'")->capture_default_str();
  app->add_option("--dtype", flags->dtype,
                  "dump folders: which copy to read when several exist (default fp16); "
                  ".npy/.npz: the dtype every array must have")
      ->check(CLI::IsMember({"fp16", "fp32", "bf16"}, CLI::ignore_case));
  AddOutputFlags(app, &flags->force, &flags->quiet, "OUT.kvc");
  AddServerFlags(app, &flags->server);
  return {app, [flags] { return RunCompress(*flags); }};
}

}  // namespace kvcomp::cli

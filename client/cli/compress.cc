// kvcomp compress INPUT -o OUT.kvc --codec SPEC --server HOST:PORT [--dtype fp16|fp32|bf16]
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
  std::optional<io::SideRecord> side;  // a llama.cpp state's skeleton, kept in the .kvc
  std::string summary;
  read.side = &side;
  read.summary = &summary;
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
  std::atomic<double> answered_fraction{0};  // of a streamed call's chunks
  auto client = Connect(f.server, [&answered_fraction](size_t answered, size_t total) {
    answered_fraction = static_cast<double>(answered) / static_cast<double>(total);
  });
  if (!client.ok()) return Fail(kCmd, kExitServer, client.status());

  // A .kvc file holds no names: blocks of a tensor are found by (layer, kind), which must
  // then name one tensor (docs/FORMAT.md).
  std::set<std::pair<int32_t, Kind>> layer_kinds;
  for (const io::NamedTensor& t : *cache) {
    const TensorMeta& m = t.tensor.meta;
    if (GroupedByLayerKind(m) && !layer_kinds.insert({m.layer, m.kind}).second) {
      return Fail(kCmd, kExitInput,
                  absl::InvalidArgumentError(absl::StrCat(
                      "two tensors are layer ", m.layer, " ", KindName(m.kind), " (the second is '",
                      t.name, "'); a .kvc file keeps one tensor per layer and kind")));
    }
  }
  // One call: unary below the stream threshold, else a stream of chunks (client library). A
  // state with no cells has no tensors: its skeleton is all there is.
  absl::StatusOr<client::CompressResult> result = client::CompressResult{};
  if (!cache->empty()) {
    // On a terminal, a bar that the chunks of a streamed call move along.
    Progress progress("kvcomp compress", true,
                      [&answered_fraction] { return answered_fraction.load(); });
    result = (*client)->Compress(f.codec, *cache);
  }
  if (!result.ok()) return Fail(kCmd, kExitServer, result.status());
  std::vector<client::CompressedTensor>& compressed = result->tensors;
  std::vector<client::TensorReport> reports;
  size_t frame_count = 0;
  for (size_t i = 0; i < compressed.size(); ++i) {
    // Every frame must be well-formed before it goes into the file; the frames of a tensor
    // in token blocks are only told apart by (layer, kind) there.
    const TensorMeta& meta = (*cache)[i].tensor.meta;
    absl::Status ok = absl::OkStatus();
    auto frames = SplitFrames(compressed[i].frame);
    if (!frames.ok() || frames->empty()) {
      ok = frames.ok() ? absl::DataLossError("no frame") : frames.status();
    } else if (frames->size() > 1 && !GroupedByLayerKind(meta)) {
      return Fail(kCmd, kExitInput,
                  absl::InvalidArgumentError(absl::StrCat(
                      "tensor '", (*cache)[i].name, "' is above the stream threshold (",
                      (*client)->stream_threshold_bytes(),
                      " bytes) and went in token blocks, but it has no layer and kind (name it "
                      "layer<N>_k or layer<N>_v) to find its blocks by in a .kvc file; or raise "
                      "--stream-threshold-mib and --max-message-mib")));
    }
    for (size_t j = 0; ok.ok() && j < frames->size(); ++j) {
      auto parsed = ParseFrame((*frames)[j]);
      if (!parsed.ok()) {
        ok = parsed.status();
      } else if (parsed->header.meta.layer != meta.layer || parsed->header.meta.kind != meta.kind) {
        ok = absl::DataLossError("layer or kind unlike the tensor's");
      }
    }
    if (!ok.ok()) {
      return Fail(kCmd, kExitServer,
                  absl::DataLossError(absl::StrCat("server returned a malformed frame for '",
                                                   (*cache)[i].name, "': ", ok.ToString())));
    }
    frame_count += frames->size();
    reports.push_back(compressed[i].report);
    if (reports.back().name.empty()) reports.back().name = (*cache)[i].name;
  }
  const std::vector<uint8_t> record = side ? io::EncodeSideRecord(*side) : std::vector<uint8_t>();
  if (!f.quiet) {
    std::cout << "kvcomp compress: " << f.input << " ("
              << io::CacheFormatName(*io::InputFormat(f.input)) << ", " << cache->size()
              << " tensors" << (summary.empty() ? "" : "; ") << summary << ") via "
              << f.server.address << "\n";
    PrintReportTable(std::cout, reports);
    if (side) PrintSideRecordLine(std::cout, *side, record.size());
  }
  absl::Status written = io::WriteFileAtomic(f.output, [&](io::Sink& sink) -> absl::Status {
    if (absl::Status s = sink.Write(record); !s.ok()) return s;
    for (const auto& t : compressed) {
      if (absl::Status s = sink.Write(t.frame); !s.ok()) return s;
    }
    return absl::OkStatus();
  });
  if (!written.ok()) return Fail(kCmd, kExitInput, written);
  uint64_t total = record.size();
  for (const auto& t : compressed) total += t.frame.size();
  if (!f.quiet) {
    std::cout << "wrote " << f.output << ": " << compressed.size() << " tensors in " << frame_count
              << " frames" << (side ? " after the state's side record" : "") << ", " << total
              << " bytes\n";
    if (side) PrintWholeFileLine(std::cout, f.input, total);
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
  app->add_option("input", flags->input,
                  "dump folder, .npy, .npz or .safetensors file, or a llama.cpp sequence-state "
                  "file (recognised by its magic; the .kvc then keeps its other bytes too)")
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

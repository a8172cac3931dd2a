// kvcomp info IN.kvc: every frame's header, read locally (no server).
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/cli/common.h"
#include "client/io/file_util.h"
#include "client/io/kv_tensor.h"
#include "client/io/llama_state.h"
#include "core/kvcomp/frame.h"
#include "core/kvcomp/registry.h"

namespace kvcomp::cli {
namespace {

struct InfoFlags {
  std::string input;
};

// The pipeline spec a frame header names, e.g. "zstd(3)"; unknown stages by ID.
std::string StagesSpec(const FrameHeader& h) {
  std::vector<std::string> parts;
  for (const FrameStage& s : h.stages) {
    auto stage = StageRegistry::Get().Create(s.id, s.values);
    parts.push_back(stage.ok() ? (*stage)->Spec() : absl::StrCat("stage#", int{s.id}));
  }
  return absl::StrJoin(parts, "+");
}

int RunInfo(const InfoFlags& f) {
  constexpr absl::string_view kCmd = "info";
  auto kvc = ReadKvcFile(f.input);
  if (!kvc.ok()) return Fail(kCmd, kExitInput, kvc.status());
  // Tensors sent in token blocks have several frames (docs/FORMAT.md); `tokens` says which.
  const std::vector<std::vector<size_t>> tensors = TensorFrames(kvc->headers);
  std::vector<size_t> tensor_of(kvc->frames.size());
  std::vector<std::string> tokens(kvc->frames.size(), "whole");
  for (size_t t = 0; t < tensors.size(); ++t) {
    int64_t offset = 0, total = 0;
    for (size_t i : tensors[t]) {
      const TensorMeta& m = kvc->headers[i].header.meta;
      total += m.shape.empty() ? 0 : m.shape[TokenAxis(m)];
    }
    for (size_t i : tensors[t]) {
      tensor_of[i] = t;
      const TensorMeta& m = kvc->headers[i].header.meta;
      const int64_t n = m.shape.empty() ? 0 : m.shape[TokenAxis(m)];
      if (tensors[t].size() > 1) tokens[i] = absl::StrCat(offset, "-", offset + n, "/", total);
      offset += n;
    }
  }
  std::cout << f.input << ": " << kvc->bytes.size() << " bytes, " << kvc->frames.size()
            << " frames, " << tensors.size() << " tensors\n";
  if (kvc->side) {
    // The non-tensor part of the engine file it came from (docs/FORMAT.md, "Side records").
    auto summary = io::SummarizeLlamaSkeleton(kvc->side->bytes);
    std::cout << "side record at offset 0: llama.cpp sequence state, " << kvc->side_bytes
              << " bytes (skeleton " << kvc->side->bytes.size()
              << " bytes): " << (summary.ok() ? summary->ToString() : summary.status().ToString())
              << "\n";
  }
  std::cout << absl::StrFormat(
      "%5s %10s %-10s %5s %4s %5s %-14s %-11s %-17s %10s %10s %7s %-16s  %s  [%s]\n", "frame",
      "offset", "name", "layer", "kind", "dtype", "shape", "layout", "tokens", "raw_bytes",
      "frame_bytes", "ratio", "checksum", "stages", "stream bytes");
  uint64_t raw_total = 0;
  for (size_t i = 0; i < kvc->frames.size(); ++i) {
    const auto frame = kvc->frames[i];
    const ParsedFrame* parsed = &kvc->headers[i];
    const TensorMeta& m = parsed->header.meta;
    const uint64_t raw = m.NumBytes();
    raw_total += raw;
    // The last stage's output streams, in order: what each part of the tensor costs.
    std::vector<size_t> stream_bytes;
    for (const auto& stream : parsed->streams) stream_bytes.push_back(stream.size());
    std::cout << absl::StrFormat(
        "%5d %10d %-10s %5s %4s %5s %-14s %-11s %-17s %10d %10d %6.3fx %016x  %s  [%s]\n", i,
        kvc->offsets[i], io::CanonicalTensorName(m.layer, m.kind, tensor_of[i]),
        m.layer >= 0 ? absl::StrCat(m.layer) : std::string("-"), KindName(m.kind),
        DTypeName(m.dtype), m.ShapeString(), LayoutName(m.layout), tokens[i], raw, frame.size(),
        frame.empty() ? 0.0 : static_cast<double>(raw) / frame.size(), parsed->checksum,
        StagesSpec(parsed->header), absl::StrJoin(stream_bytes, " "));
  }
  std::cout << absl::StrFormat(
      "total: raw %d bytes, file %d bytes, ratio %.3fx\n", raw_total, kvc->bytes.size(),
      kvc->bytes.empty() ? 0.0 : static_cast<double>(raw_total) / kvc->bytes.size());
  return kExitOk;
}

}  // namespace

Command AddInfoCommand(CLI::App& root) {
  auto flags = std::make_shared<InfoFlags>();
  CLI::App* app = root.add_subcommand(
      "info", "Print the header of every frame in a .kvc file (no server needed)");
  app->add_option("input", flags->input, "the .kvc file")->required();
  return {app, [flags] { return RunInfo(*flags); }};
}

}  // namespace kvcomp::cli

// kvcomp analyze INPUT --codec A --codec B --server HOST:PORT: every codec on every tensor,
// one summary row per codec (weighted K, V and KV ratios, timings), nothing written.
#include <iostream>

#include "absl/strings/str_format.h"
#include "cli/common.h"
#include "io/kv_io.h"

namespace kvcomp::cli {
namespace {

struct AnalyzeFlags {
  std::string input;
  std::vector<std::string> codecs;
  std::string dtype;
  bool per_tensor = false;
  ServerFlags server;
};

double Ratio(uint64_t raw, uint64_t comp) { return comp ? static_cast<double>(raw) / comp : 0.0; }

int RunAnalyze(const AnalyzeFlags& f) {
  constexpr absl::string_view kCmd = "analyze";
  io::ReadOptions read;
  if (!f.dtype.empty()) read.dtype = ParseDTypeFlag(f.dtype);
  auto cache = io::ReadKvCache(f.input, read);
  if (!cache.ok()) return Fail(kCmd, kExitInput, cache.status());
  auto client = Connect(f.server);
  if (!client.ok()) return Fail(kCmd, kExitServer, client.status());
  auto analysis = (*client)->Analyze(f.codecs, *cache);
  if (!analysis.ok()) return Fail(kCmd, kExitServer, analysis.status());
  std::cout << absl::StrFormat("%-32s %12s %12s %8s %8s %8s %9s %9s %s\n", "codec", "raw_bytes",
                               "comp_bytes", "ratio", "K", "V", "comp_s", "decomp_s", "lossless");
  for (const client::CodecAnalysis& a : *analysis) {
    uint64_t raw[2] = {0, 0}, comp[2] = {0, 0};
    double cs = 0, ds = 0;
    bool lossless = true;
    for (const client::TensorReport& r : a.reports) {
      if (r.kind == Kind::kKey || r.kind == Kind::kValue) {
        const int k = r.kind == Kind::kKey ? 0 : 1;
        raw[k] += r.raw_bytes;
        comp[k] += r.compressed_bytes;
      }
      cs += r.compress_seconds;
      ds += r.decompress_seconds;
      lossless = lossless && r.lossless;
    }
    std::cout << absl::StrFormat(
        "%-32s %12d %12d %7.3fx %7.3fx %7.3fx %9.4f %9.4f %s\n", a.codec, a.totals.raw_bytes,
        a.totals.compressed_bytes, Ratio(a.totals.raw_bytes, a.totals.compressed_bytes),
        Ratio(raw[0], comp[0]), Ratio(raw[1], comp[1]), cs, ds, lossless ? "yes" : "no");
    if (f.per_tensor) PrintReportTable(std::cout, a.reports);
  }
  return kExitOk;
}

}  // namespace

Command AddAnalyzeCommand(CLI::App& root) {
  auto flags = std::make_shared<AnalyzeFlags>();
  CLI::App* app = root.add_subcommand(
      "analyze",
      "Evaluate codecs on a KV cache through the server: weighted KV, K and V ratios and "
      "timings per codec (writes nothing)");
  app->add_option("input", flags->input, "dump folder, .npy or .npz file")->required();
  app->add_option("--codec", flags->codecs, "codec spec to evaluate; repeat for several")
      ->required();
  app->add_option("--dtype", flags->dtype, "as for compress")
      ->check(CLI::IsMember({"fp16", "fp32", "bf16"}, CLI::ignore_case));
  app->add_flag("--per-tensor", flags->per_tensor, "also print each codec's per-tensor table");
  AddServerFlags(app, &flags->server);
  return {app, [flags] { return RunAnalyze(*flags); }};
}

}  // namespace kvcomp::cli

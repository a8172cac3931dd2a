// kvcomp analyze INPUT: the seed's whole study in one call. Sweeps and explicit codecs run on
// every tensor through the server; the table, JSON and a self-contained HTML report show
// ratio, error and speed per configuration, and the recommended spec (best ratio that meets
// the K and V thresholds and the byte budget), which `kvcomp compress --codec` takes as is.
#include <iostream>
#include <optional>

#include "client/cli/common.h"
#include "client/cli/engine_verdict.h"
#include "client/io/file_util.h"
#include "client/io/kv_io.h"
#include "client/report/analyze_report.h"

namespace kvcomp::cli {
namespace {

struct Thresholds {
  std::optional<double> cos, mae, rel_mae, max_abs;
  void Into(v1::ErrorThresholds* t) const {
    if (cos) t->mutable_cosine()->set_value(*cos);
    if (mae) t->mutable_mae()->set_value(*mae);
    if (rel_mae) t->mutable_rel_mae()->set_value(*rel_mae);
    if (max_abs) t->mutable_max_abs()->set_value(*max_abs);
  }
};

struct AnalyzeFlags {
  std::string input;
  std::vector<std::string> codecs, sweeps;
  std::string dtype;
  Thresholds k, v;
  std::optional<uint64_t> budget_bytes;
  uint64_t max_tokens = 0;
  uint32_t max_layers = 0;
  std::optional<double> rope_theta;
  std::string rope_pairs = "interleaved";
  std::string json, html;
  EngineVerdictFlags engine;
  ServerFlags server;
};

absl::Status WriteText(const std::string& path, const std::string& text) {
  return io::WriteFileAtomic(
      path, absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

int RunAnalyze(const AnalyzeFlags& f) {
  constexpr absl::string_view kCmd = "analyze";
  io::ReadOptions read;
  if (!f.dtype.empty()) read.dtype = ParseDTypeFlag(f.dtype);
  if (!f.engine.model.empty()) {
    // The engine judges by loading the analysed state itself.
    auto format = io::InputFormat(f.input);
    if (format.ok() && *format != io::CacheFormat::kLlamaState) {
      return Fail(kCmd, kExitUsage,
                  absl::InvalidArgumentError(
                      absl::StrCat("--engine-model needs a llama.cpp state file as input; ",
                                   f.input, " is a ", io::CacheFormatName(*format))));
    }
  } else if (f.engine.min_agreement) {
    return Fail(kCmd, kExitUsage,
                absl::InvalidArgumentError("--min-agreement needs --engine-model"));
  }
  auto cache = io::ReadKvCache(f.input, read);
  if (!cache.ok()) return Fail(kCmd, kExitInput, cache.status());
  v1::AnalyzeRequest req;
  for (const auto& c : f.codecs) req.add_codecs(c);
  for (const auto& s : f.sweeps) req.add_sweeps(s);
  f.k.Into(req.mutable_k_thresholds());
  f.v.Into(req.mutable_v_thresholds());
  if (f.budget_bytes) req.mutable_budget_bytes()->set_value(*f.budget_bytes);
  req.set_max_tokens(f.max_tokens);
  req.set_max_layers(f.max_layers);
  if (f.rope_theta) req.mutable_rope_theta()->set_value(*f.rope_theta);
  req.set_rope_pairs(f.rope_pairs);
  auto client = Connect(f.server);
  if (!client.ok()) return Fail(kCmd, kExitServer, client.status());
  auto response = (*client)->Analyze(std::move(req), *cache);
  if (!response.ok()) return Fail(kCmd, kExitServer, response.status());
  if (!f.engine.model.empty()) {
    const bool bounds = f.k.cos || f.k.mae || f.k.rel_mae || f.k.max_abs || f.v.cos || f.v.mae ||
                        f.v.rel_mae || f.v.max_abs;
    absl::Status judged =
        ApplyEngineVerdict(f.engine, f.input, f.server.address, bounds, f.budget_bytes, &*response);
    if (!judged.ok()) return Fail(kCmd, kExitServer, judged);
  }
  if (f.json == "-") {
    std::cout << report::AnalyzeJson(*response);
  } else {
    std::cout << report::AnalyzeTable(*response);
    if (!f.engine.model.empty()) std::cout << EngineVerdictTable(*response);
    if (!f.json.empty()) {
      if (auto s = WriteText(f.json, report::AnalyzeJson(*response)); !s.ok()) {
        return Fail(kCmd, kExitInput, s);
      }
    }
  }
  if (!f.html.empty()) {
    if (auto s = WriteText(f.html, report::AnalyzeHtml(*response, f.input)); !s.ok()) {
      return Fail(kCmd, kExitInput, s);
    }
    if (f.json != "-") std::cout << "HTML report: " << f.html << "\n";
  }
  return kExitOk;
}

}  // namespace

Command AddAnalyzeCommand(CLI::App& root) {
  auto flags = std::make_shared<AnalyzeFlags>();
  CLI::App* app = root.add_subcommand(
      "analyze",
      "Compare codecs on a KV cache through the server (ratio with metadata counted, error, "
      "speed, per layer x K/V) and recommend the best spec that meets the thresholds");
  app->add_option("input", flags->input,
                  "dump folder, .npy, .npz or .safetensors file, or a llama.cpp state file")
      ->required();
  app->add_option("--codec", flags->codecs, "a codec spec to evaluate; repeat for several");
  app->add_option("--sweep", flags->sweeps,
                  "a named sweep: default, lossless, quant, clip, blocknorm, mixed, bounded "
                  "(with neither --codec nor --sweep: default)");
  app->add_option("--dtype", flags->dtype, "for dump folders holding both: fp16 (default) or fp32")
      ->check(CLI::IsMember({"fp16", "fp32", "bf16"}, CLI::ignore_case));
  for (auto [kind, t] : {std::pair<const char*, Thresholds*>{"k", &flags->k}, {"v", &flags->v}}) {
    const std::string K = kind[0] == 'k' ? "K" : "V";
    app->add_option(std::string("--") + kind + "-cos", t->cos, K + " tensors: cosine >= this");
    app->add_option(std::string("--") + kind + "-mae", t->mae, K + " tensors: MAE <= this");
    app->add_option(std::string("--") + kind + "-rel-mae", t->rel_mae,
                    K + " tensors: MAE / mean|x| <= this");
    app->add_option(std::string("--") + kind + "-max-abs", t->max_abs,
                    K + " tensors: max |error| <= this");
  }
  app->add_option("--budget-bytes", flags->budget_bytes,
                  "compressed size allowed for the whole cache");
  app->add_option("--max-tokens", flags->max_tokens, "sample this many tokens per tensor (0: all)");
  app->add_option("--max-layers", flags->max_layers, "sample this many layers (0: all)");
  app->add_option("--rope-theta", flags->rope_theta,
                  "also check whether undoing RoPE (this base) helps K");
  app->add_option("--rope-pairs", flags->rope_pairs, "RoPE pair layout")
      ->check(CLI::IsMember({"interleaved", "half"}));
  app->add_option("--json", flags->json,
                  "write the full result as JSON to this file ('-': stdout)");
  app->add_option("--html", flags->html, "write a self-contained HTML report to this file");
  AddEngineVerdictFlags(app, &flags->engine);
  AddServerFlags(app, &flags->server);
  return {app, [flags] { return RunAnalyze(*flags); }};
}

}  // namespace kvcomp::cli

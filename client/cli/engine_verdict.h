// kvcomp analyze --engine-model: the engine's verdict beside the error metrics. A client-side
// step (the server stays free of any engine): after the server's analysis, the best
// configurations are compressed, restored and loaded into llama.cpp by the engine hook
// (engine/judge.mjs, or any program speaking its protocol, docs/ENGINES.md), which reports
// greedy and teacher-forced agreement with the exact cache and the KL divergence.
//
// Agreement, as --min-agreement thresholds it: the smaller of the teacher-forced top-1
// agreement and the share of greedy tokens before the first divergence. With a threshold, only
// judged configurations can be recommended.
#pragma once

#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "absl/status/status.h"
#include "kvcomp/v1/kvcomp.pb.h"

namespace kvcomp::cli {

struct EngineVerdictFlags {
  std::string model;  // a GGUF; empty: no engine verdict
  std::optional<double> min_agreement;
  int candidates = 6;  // configurations judged, best ratio first
  int tokens = 64;     // continuation judged
  std::string hook;    // words split on spaces; empty: $KVCOMP_ENGINE_HOOK, else the repo's
};

void AddEngineVerdictFlags(CLI::App* app, EngineVerdictFlags* flags);

// The configurations' agreement (EngineVerdict), and with --min-agreement their verdicts and
// the recommendation, folded into `response`. `state` is the analysed llama.cpp state file.
// Judged: the best configurations by ratio that pass; with `error_bounds_given` false, lossy
// ones too (the server passes no lossy configuration without error thresholds; here the
// engine is the judge), within `budget_bytes` when given.
absl::Status ApplyEngineVerdict(const EngineVerdictFlags& flags, const std::string& state,
                                const std::string& server, bool error_bounds_given,
                                std::optional<uint64_t> budget_bytes,
                                v1::AnalyzeResponse* response);

// One row per judged configuration.
std::string EngineVerdictTable(const v1::AnalyzeResponse& response);

}  // namespace kvcomp::cli

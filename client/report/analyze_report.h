// Renders an Analyze response for people and programs: a terminal table, JSON, and a
// self-contained HTML report (no network: data, styles and the chart script are inline).
#pragma once

#include <string>

#include "kvcomp/v1/kvcomp.pb.h"

namespace kvcomp::report {

// Configurations, the recommendation with its runners-up, and the recommended policy per
// layer x K/V.
std::string AnalyzeTable(const kvcomp::v1::AnalyzeResponse& response);

// The response as JSON (protobuf's canonical mapping, fields always present).
std::string AnalyzeJson(const kvcomp::v1::AnalyzeResponse& response);

// A ratio-vs-error Pareto chart for K and for V, per-layer ratio bars for the recommended
// policy, and the recommendation highlighted. `title` names the analysed cache.
std::string AnalyzeHtml(const kvcomp::v1::AnalyzeResponse& response, const std::string& title);

}  // namespace kvcomp::report

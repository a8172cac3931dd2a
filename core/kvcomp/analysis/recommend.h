// Judging configurations against thresholds and a budget, and choosing one. Internal.
#pragma once

#include "core/kvcomp/analysis/analyzer.h"

namespace kvcomp {

// Sets `passes` and `verdict` on each configuration. `scale` converts analysed bytes into
// an estimate for the whole cache (1 when nothing was sampled).
void Judge(const AnalysisOptions& options, double scale, std::vector<ConfigResult>* configs);

Recommendation Recommend(const AnalysisOptions& options, const std::vector<ConfigResult>& configs);

}  // namespace kvcomp

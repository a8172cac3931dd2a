// Conversions between the Analyze wire messages and core's analysis engine.
#pragma once

#include "core/kvcomp/analysis/analyzer.h"
#include "kvcomp/v1/kvcomp.pb.h"

namespace kvcomp::server {

// Specs, sweeps, thresholds, budget, sampling and the RoPE check; no callbacks.
AnalysisOptions AnalysisOptionsFromProto(const v1::AnalyzeRequest& request);

ErrorBounds BoundsFromProto(const v1::ErrorThresholds& thresholds);

// Fills `out` from `report`. Per-tensor reports are named after the request tensor they
// measured (`tensors`, the request's, in order).
void AnalysisToProto(const AnalysisReport& report,
                     const google::protobuf::RepeatedPtrField<v1::Tensor>& tensors,
                     v1::AnalyzeResponse* out);

}  // namespace kvcomp::server

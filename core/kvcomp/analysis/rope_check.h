// The seed's inverse-RoPE check: does undoing the rotary embedding make K more compressible?
// Internal to analysis/.
#pragma once

#include "core/kvcomp/analysis/analyzer.h"

namespace kvcomp {

// Positions are the token index (a prefill cache). `pairs` is "interleaved" (2i, 2i+1) or
// "half" (i, i + d/2).
absl::StatusOr<RopeCheck> CheckInverseRope(absl::Span<const TensorView> keys, double theta,
                                           absl::string_view pairs);

}  // namespace kvcomp

// uquant refuses a tensor that holds a non-finite value or a value whose code is out of range.
// bounded(...) searches its step on a sample, so such a refusal may come from values outside
// the sample: only then does it look at the whole tensor and try again. Every other error is
// the answer. The refusal is marked by a status payload, so its code and message stay as they
// are for everyone else.
#pragma once

#include "absl/status/status.h"
#include "absl/strings/cord.h"
#include "absl/strings/string_view.h"

namespace kvcomp::uquant_internal {

inline constexpr absl::string_view kRefusalPayload = "kvcomp.uquant.out-of-range";

inline absl::Status MarkRefusal(absl::Status s) {
  if (!s.ok()) s.SetPayload(kRefusalPayload, absl::Cord("1"));
  return s;
}

inline bool IsRefusal(const absl::Status& s) { return s.GetPayload(kRefusalPayload).has_value(); }

}  // namespace kvcomp::uquant_internal

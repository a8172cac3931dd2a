#include "core/kvcomp/stage.h"

#include <algorithm>
#include <charconv>

#include "absl/strings/str_cat.h"

namespace kvcomp {

// Shortest decimal form that parses back to the same double.
std::string FormatParamValue(const ParamDef& def, double value) {
  switch (def.type) {
    case ParamType::kInt:
      return absl::StrCat(static_cast<int64_t>(value));
    case ParamType::kEnum: {
      const size_t i = static_cast<size_t>(value);
      return i < def.choices.size() ? std::string(def.choices[i]) : absl::StrCat(i);
    }
    case ParamType::kFloat:
      break;
  }
  // The shortest text that reads back as `value`. std::to_chars finds it in one call, where
  // snprintf at rising precisions, each read back, had been ~5% of compressing a 32 KiB block
  // with bounded(...), whose report names the step it chose.
  char buf[40];
  const char* const end = std::to_chars(buf, buf + sizeof buf, value).ptr;
  // '+' joins stages in a spec, so exponents are written "1e30", never "1e+30", which would not
  // parse back (found by fuzz_roundtrip: tests/fuzz/regressions/roundtrip/spec-exponent-*).
  std::string out(buf, static_cast<size_t>(end - buf));
  out.erase(std::remove(out.begin(), out.end(), '+'), out.end());
  return out;
}

absl::Status CheckStageStreams(const Stage& stage, absl::string_view direction, Streams& got,
                               absl::Span<const StreamDesc> want) {
  if (got.size() != want.size()) {
    return absl::DataLossError(absl::StrCat("stage '", stage.Spec(), "' ", direction, " produced ",
                                            got.size(), " streams, expected ", want.size()));
  }
  for (size_t i = 0; i < got.size(); ++i) {
    if (!want[i].opaque() && got[i].data().size() != want[i].bytes()) {
      return absl::DataLossError(absl::StrCat("stage '", stage.Spec(), "' ", direction, " stream ",
                                              i, " has ", got[i].data().size(), " bytes, expected ",
                                              want[i].bytes()));
    }
  }
  for (size_t i = 0; i < got.size(); ++i) got[i].set_desc(want[i]);
  return absl::OkStatus();
}

namespace {

std::vector<StreamDesc> DescsOf(const Streams& streams) {
  std::vector<StreamDesc> descs;
  descs.reserve(streams.size());
  for (const Stream& s : streams) descs.push_back(s.desc());
  return descs;
}

}  // namespace

absl::Status Stage::Encode(const Streams& in, Streams* out) const {
  absl::StatusOr<std::vector<StreamDesc>> plan = Plan(DescsOf(in));
  if (!plan.ok()) return plan.status();
  if (absl::Status st = DoEncode(in, out); !st.ok()) return st;
  return CheckStageStreams(*this, "encode", *out, *plan);
}

absl::Status Stage::EncodeMeasuring(const Streams& in, Streams* out, ErrorSums* error) const {
  absl::StatusOr<std::vector<StreamDesc>> plan = Plan(DescsOf(in));
  if (!plan.ok()) return plan.status();
  if (absl::Status st = DoEncodeMeasuring(in, out, error); !st.ok()) return st;
  return CheckStageStreams(*this, "encode", *out, *plan);
}

absl::Status Stage::DecodeInto(const Streams& encoded, absl::Span<const StreamDesc> want,
                               absl::Span<uint8_t> into, Streams* decoded) const {
  if (absl::Status st = DoDecode(encoded, want, into, decoded); !st.ok()) return st;
  if (into.empty() || decoded->empty()) return absl::OkStatus();
  Stream& first = (*decoded)[0];
  if (first.data().data() == into.data()) return absl::OkStatus();
  if (first.data().size() != into.size()) {
    return absl::DataLossError(absl::StrCat("stage '", Spec(), "' decoded ", first.data().size(),
                                            " bytes, expected ", into.size()));
  }
  std::copy(first.data().begin(), first.data().end(), into.begin());
  first = Stream::Borrow(first.desc(), into);
  return absl::OkStatus();
}

absl::Status Stage::DecodeStreaming(const Streams& encoded, absl::Span<const StreamDesc> want,
                                    const ChunkSink& sink, Streams* decoded) const {
  if (absl::Status st = DoDecode(encoded, want, {}, decoded); !st.ok()) return st;
  if (!decoded->empty() && !want.empty() && !want[0].opaque()) {
    const Stream& first = (*decoded)[0];
    if (first.data().size() != want[0].bytes()) {
      return absl::DataLossError(absl::StrCat("stage '", Spec(), "' decoded ", first.data().size(),
                                              " bytes, expected ", want[0].bytes()));
    }
    if (!first.data().empty()) sink(0, want[0].geom.size(), first.data().data());
  }
  if (!decoded->empty()) decoded->erase(decoded->begin());
  return absl::OkStatus();
}

std::string Stage::Spec() const {
  const auto& defs = info_.params;
  if (defs.empty()) return std::string(info_.name);
  std::string out = absl::StrCat(info_.name, "(");
  for (size_t i = 0; i < defs.size(); ++i) {
    if (i) out.push_back(',');
    // One parameter reads best bare ("zstd(3)"); several read best named.
    if (defs.size() > 1) absl::StrAppend(&out, defs[i].name, "=");
    out += FormatParamValue(defs[i], values_[i]);
  }
  out.push_back(')');
  return out;
}

}  // namespace kvcomp

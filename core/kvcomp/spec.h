// The spec language: one string names a pipeline, preset or policy everywhere (API, CLI,
// frame reports, metrics labels).
//
//   spec     := pipeline
//   pipeline := node ('+' node)*              e.g. "gear+delta+zstd(19)"
//   node     := NAME [ '(' [arg (',' arg)*] ')' ]
//   arg      := [NAME '='] pipeline           e.g. "bounded(cos=0.9999,rel_mae=0.01)"
//
// NAME is [A-Za-z0-9_.-]+, so numbers are names too. Whitespace is ignored.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace kvcomp {

struct SpecNode;
using SpecPipeline = std::vector<SpecNode>;

struct SpecArg {
  std::string key;  // empty for positional arguments
  SpecPipeline value;
  size_t pos = 0;  // offset in the source, for error messages
};

struct SpecNode {
  std::string name;
  std::vector<SpecArg> args;
  size_t pos = 0;
  bool has_parens = false;
  // The single bare name of `arg`, if it is one ("3", "channel"), else empty.
  static absl::string_view Scalar(const SpecArg& arg);
};

// INVALID_ARGUMENT names the offending token and its offset.
absl::StatusOr<SpecPipeline> ParseSpec(absl::string_view text);
std::string FormatSpec(const SpecPipeline& pipeline);

}  // namespace kvcomp

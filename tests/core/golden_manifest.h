// tests/golden/golden.tsv: one line per checked-in frame, written by tests/tools/make_golden
// and checked by golden_test.cc. Columns, tab-separated:
//   file  spec  recorded  lossless  meta  decoded_sha256  source_sha256
// `spec` is what the frame was made with (a preset or policy included), `recorded` the concrete
// pipeline the frame holds, `meta` the tensor header (MetaString), `decoded_sha256` the digest
// of the bytes the frame must decode to, `source_sha256` that of the real tensor it came from.
#pragma once

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/kvcomp/tensor.h"

namespace kvcomp::testing {

struct GoldenEntry {
  std::string file;
  std::string spec;
  std::string recorded;
  bool lossless = true;
  std::string meta;
  std::string decoded_sha256;
  std::string source_sha256;
};

inline constexpr char kGoldenManifest[] = "golden.tsv";

// "FP16 head-major K layer=0 [4,32,8]"
inline std::string MetaString(const TensorMeta& m) {
  return absl::StrCat(DTypeName(m.dtype), " ", LayoutName(m.layout), " ", KindName(m.kind),
                      " layer=", m.layer, " ", m.ShapeString());
}

inline absl::StatusOr<std::vector<GoldenEntry>> ReadGoldenManifest(const std::string& path) {
  std::ifstream f(path);
  if (!f) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::vector<GoldenEntry> out;
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> c = absl::StrSplit(line, '\t');
    if (c.size() != 7 || (c[3] != "lossless" && c[3] != "lossy")) {
      return absl::DataLossError(absl::StrCat(path, ": bad line: ", line));
    }
    out.push_back({c[0], c[1], c[2], c[3] == "lossless", c[4], c[5], c[6]});
  }
  return out;
}

inline std::string FormatGoldenManifest(const std::vector<GoldenEntry>& entries) {
  std::string out =
      "# Written by tests/tools/make_golden; see docs/RELIABILITY.md. Changing a line is a "
      "format change.\n# file\tspec\trecorded\tlossless\tmeta\tdecoded_sha256\tsource_sha256\n";
  for (const auto& e : entries) {
    absl::StrAppend(
        &out,
        absl::StrJoin({e.file, e.spec, e.recorded, std::string(e.lossless ? "lossless" : "lossy"),
                       e.meta, e.decoded_sha256, e.source_sha256},
                      "\t"),
        "\n");
  }
  return out;
}

}  // namespace kvcomp::testing

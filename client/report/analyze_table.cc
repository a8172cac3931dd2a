#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/report/analyze_report.h"

namespace kvcomp::report {
namespace {

using kvcomp::v1::AnalyzeResponse;
using kvcomp::v1::CodecAnalysis;

std::string Cos(const CodecAnalysis& c, const kvcomp::v1::ErrorMetrics& e) {
  return c.lossless() ? "exact" : absl::StrFormat("%.6f", e.cosine());
}

std::string Mae(const CodecAnalysis& c, const kvcomp::v1::ErrorMetrics& e) {
  return c.lossless() ? "0" : absl::StrFormat("%.2e", e.mae());
}

std::string Speed(uint64_t bytes, double seconds) {
  return seconds > 0 ? absl::StrFormat("%.2f", bytes / seconds / 1e9) : "-";
}

std::string Clip(const std::string& s, size_t width) {
  return s.size() <= width ? s : s.substr(0, width - 3) + "...";
}

}  // namespace

std::string AnalyzeTable(const AnalyzeResponse& r) {
  std::string out = absl::StrCat("Analysed ", r.sampling(), "\n\n");
  const size_t w = 58;
  absl::StrAppendFormat(&out, "%-*s %7s %7s %7s %9s %9s %9s %9s %6s %6s  %s\n", w, "codec", "K",
                        "V", "KV", "K cos", "V cos", "K mae", "V mae", "c GB/s", "d GB/s",
                        "verdict");
  std::vector<const CodecAnalysis*> rows;
  for (const auto& c : r.codecs()) rows.push_back(&c);
  std::stable_sort(rows.begin(), rows.end(), [](const CodecAnalysis* a, const CodecAnalysis* b) {
    return a->totals().ratio() > b->totals().ratio();
  });
  for (const CodecAnalysis* c : rows) {
    const bool best = r.recommendation().codec() == c->codec();
    if (!c->error().empty()) {
      absl::StrAppendFormat(&out, "%-*s  error: %s\n", w, Clip(c->codec(), w), c->error());
      continue;
    }
    absl::StrAppendFormat(
        &out, "%-*s %7.3f %7.3f %7.3f %9s %9s %9s %9s %6s %6s  %s%s\n", w, Clip(c->codec(), w),
        c->ratio_k(), c->ratio_v(), c->totals().ratio(), Cos(*c, c->worst_k()),
        Cos(*c, c->worst_v()), Mae(*c, c->worst_k()), Mae(*c, c->worst_v()),
        Speed(c->totals().raw_bytes(), c->compress_seconds()),
        Speed(c->totals().raw_bytes(), c->decompress_seconds()), best ? "<= " : "", c->verdict());
  }
  const auto& rec = r.recommendation();
  absl::StrAppend(&out, "\n",
                  rec.found() ? "Recommended: " : "Nothing passes. Closest: ", rec.codec(), "\n  ",
                  rec.why(), "\n");
  for (const auto& ru : rec.runners_up()) {
    absl::StrAppend(&out, "  not ", ru.codec(), ": ", ru.why(), "\n");
  }
  if (r.has_rope()) {
    absl::StrAppendFormat(&out,
                          "\nInverse RoPE on K: zstd(3) %.3fx as cached, %.3fx with RoPE undone "
                          "(mean |change| %.3f)\n",
                          r.rope().ratio_native(), r.rope().ratio_inverse(),
                          r.rope().mean_abs_change());
  }
  for (const auto& c : r.codecs()) {
    if (c.codec() != rec.codec() || c.reports().empty()) continue;
    absl::StrAppend(&out, "\nPer tensor, ", rec.codec(), ":\n");
    absl::StrAppendFormat(&out, "%5s %2s %10s %10s %7s %10s %10s  %s\n", "layer", "", "raw",
                          "packed", "ratio", "cosine", "mae", "pipeline");
    for (const auto& t : c.reports()) {
      absl::StrAppendFormat(&out, "%5d %2s %10d %10d %7.3f %10s %10s  %s\n", t.layer(),
                            t.kind() == kvcomp::v1::TENSOR_KIND_K   ? "K"
                            : t.kind() == kvcomp::v1::TENSOR_KIND_V ? "V"
                                                                    : "?",
                            t.raw_bytes(), t.compressed_bytes(), t.ratio(),
                            t.lossless() ? "exact" : absl::StrFormat("%.6f", t.error().cosine()),
                            t.lossless() ? "0" : absl::StrFormat("%.2e", t.error().mae()),
                            t.codec());
    }
  }
  return out;
}

}  // namespace kvcomp::report

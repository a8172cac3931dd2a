// Named sweeps: the seed's studies as lists of specs. Every spec here is an ordinary spec,
// so any configuration Analyze reports can be passed to Compress as it is.
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/kvcomp/analysis/analyzer.h"
#include "core/kvcomp/internal/quote.h"

namespace kvcomp {
namespace {

// The seed's zstd baselines stay as reference rows beside kvcomp's own lossless presets, which
// are the candidates worth recommending (on ../shared/kv FP16: zstd(19) 1.145x, lossless 1.253x,
// lossless-max 1.317x). Quantised caches (Q8_0, Q4_0) reach qsplit only through the presets.
std::vector<std::string> Lossless(DType dtype) {
  if (IsBlockQuantized(dtype)) return {"zstd(3)", "zstd(19)", "lossless", "lossless-max"};
  return {"zstd(1)", "zstd(3)", "zstd(19)", "lossless", "lossless-max"};
}

// KIVI's finding: K wants per-channel groups, V per-token groups.
std::string KiviQuant(int bits, absl::string_view extra = "") {
  return absl::StrCat("kv(k=quant(bits=", bits, ",group=channel", extra,
                      ")+zstd(19),v=quant(bits=", bits, ",group=token", extra, ")+zstd(19))");
}

std::vector<std::string> Quant() {
  std::vector<std::string> out;
  for (int bits : {6, 8, 10, 12}) out.push_back(KiviQuant(bits));
  return out;
}

std::vector<std::string> Clip() {
  std::vector<std::string> out;
  for (int bits : {8, 10}) out.push_back(KiviQuant(bits, ",clip=0.999"));
  return out;
}

std::vector<std::string> BlockNorm() {
  std::vector<std::string> out;
  for (int block : {64, 128}) {
    for (const char* topk : {"0.01", "0.02"}) {
      for (int bits : {8, 10}) {
        out.push_back(
            absl::StrCat("blocknorm(block=", block, ",topk=", topk, ",bits=", bits, ")+zstd(19)"));
      }
    }
  }
  return out;
}

// First layers kept exactly by the `lossless` preset; the seed's zstd(19) version stays as a
// reference row.
std::vector<std::string> Mixed() {
  std::vector<std::string> out;
  for (int n : {1, 2, 3})
    out.push_back(absl::StrCat("mixed(", n, ",lossless,", KiviQuant(10), ")"));
  out.push_back(absl::StrCat("mixed(2,zstd(19),", KiviQuant(10), ")"));
  return out;
}

std::string BoundedSpec(const ErrorBounds& b) {
  return absl::StrCat("bounded(", b.ToString(), ")");
}

// The bound-driven policy at the user's own thresholds, separately for K and V.
std::vector<std::string> Bounded(const AnalysisOptions& o) {
  if (o.k_bounds.empty() && o.v_bounds.empty()) {
    return {"bounded(cos=0.9999,rel_mae=0.01)", "bounded(cos=0.999)", "bounded(cos=0.99)"};
  }
  const std::string k = o.k_bounds.empty() ? "lossless" : BoundedSpec(o.k_bounds);
  const std::string v = o.v_bounds.empty() ? "lossless" : BoundedSpec(o.v_bounds);
  const std::string both = k == v ? k : absl::StrCat("kv(k=", k, ",v=", v, ")");
  return {both, absl::StrCat("mixed(2,lossless,", both, ")")};
}

}  // namespace

std::vector<std::string> SweepNames() {
  return {"default", "lossless", "quant", "clip", "blocknorm", "mixed", "bounded"};
}

absl::StatusOr<std::vector<std::string>> ExpandSweep(absl::string_view name, DType dtype,
                                                     const AnalysisOptions& options) {
  if (name == "lossless") return Lossless(dtype);
  if (name == "quant") return Quant();
  if (name == "clip") return Clip();
  if (name == "blocknorm") return BlockNorm();
  if (name == "mixed") return Mixed();
  if (name == "bounded") return Bounded(options);
  if (name == "default") {
    std::vector<std::string> all;
    if (IsBlockQuantized(dtype)) return Lossless(dtype);  // every other sweep is lossy
    for (const auto& part :
         {Lossless(dtype), Quant(), Clip(), BlockNorm(), Mixed(), Bounded(options)}) {
      all.insert(all.end(), part.begin(), part.end());
    }
    return all;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown sweep ", Quote(name), " (known: ", absl::StrJoin(SweepNames(), ", "), ")"));
}

}  // namespace kvcomp

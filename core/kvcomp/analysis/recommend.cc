#include "core/kvcomp/analysis/recommend.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace kvcomp {
namespace {

bool HaveThresholds(const AnalysisOptions& o) { return !o.k_bounds.empty() || !o.v_bounds.empty(); }

// The first tensor of `config` that breaks its kind's bounds, described; empty if none.
std::string FirstViolation(const AnalysisOptions& o, const ConfigResult& config) {
  for (const TensorResult& t : config.tensors) {
    if (!t.report.error) continue;  // lossless
    const ErrorBounds& b = t.report.meta.kind == Kind::kValue ? o.v_bounds : o.k_bounds;
    const std::string v = b.Violations(*t.report.error);
    if (!v.empty()) {
      return absl::StrCat(KindName(t.report.meta.kind), " layer ", t.report.meta.layer, ": ", v);
    }
  }
  return "";
}

size_t FailingTensors(const AnalysisOptions& o, const ConfigResult& config) {
  size_t n = 0;
  for (const TensorResult& t : config.tensors) {
    const ErrorBounds& b = t.report.meta.kind == Kind::kValue ? o.v_bounds : o.k_bounds;
    if (t.report.error && !b.Pass(*t.report.error)) ++n;
  }
  return n;
}

double WorstCosine(const ConfigResult& c) { return std::min(c.worst_k.cosine, c.worst_v.cosine); }

// Ordering of passing configurations: with thresholds, the best ratio wins; with only a
// budget, the most faithful (lossless first, then by worst cosine, then ratio).
bool Better(const AnalysisOptions& o, const ConfigResult& a, const ConfigResult& b) {
  if (!HaveThresholds(o) && o.budget_bytes) {
    if (a.lossless != b.lossless) return a.lossless;
    if (WorstCosine(a) != WorstCosine(b)) return WorstCosine(a) > WorstCosine(b);
  }
  return a.ratio() > b.ratio();
}

}  // namespace

void Judge(const AnalysisOptions& o, double scale, std::vector<ConfigResult>* configs) {
  for (ConfigResult& c : *configs) {
    std::vector<std::string> problems;
    if (!c.error.empty()) problems.push_back(c.error);
    if (!HaveThresholds(o) && !o.budget_bytes && !c.lossless) {
      problems.push_back("lossy, and no error thresholds were given");
    }
    if (const std::string v = FirstViolation(o, c); !v.empty()) problems.push_back(v);
    const double estimate = double(c.packed_k + c.packed_v) * scale;
    if (o.budget_bytes && estimate > double(*o.budget_bytes)) {
      problems.push_back(
          absl::StrFormat("needs ~%.0f bytes, over the budget of %d", estimate, *o.budget_bytes));
    }
    c.passes = problems.empty();
    c.verdict =
        c.passes ? absl::StrFormat("passes at KV %.3fx", c.ratio()) : absl::StrJoin(problems, "; ");
  }
}

Recommendation Recommend(const AnalysisOptions& o, const std::vector<ConfigResult>& configs) {
  Recommendation r;
  std::vector<const ConfigResult*> passing, failing;
  for (const auto& c : configs) (c.passes ? passing : failing).push_back(&c);
  auto better = [&](const ConfigResult* a, const ConfigResult* b) { return Better(o, *a, *b); };
  std::sort(passing.begin(), passing.end(), better);
  if (!passing.empty()) {
    const ConfigResult& best = *passing.front();
    r.found = true;
    r.spec = best.spec;
    r.ratio = best.ratio();
    r.why = absl::StrFormat("best of %d passing configurations: KV %.3fx (K %.3fx, V %.3fx)%s",
                            passing.size(), best.ratio(), best.ratio_k(), best.ratio_v(),
                            best.lossless ? ", bit-exact" : "");
    for (size_t i = 1; i < passing.size() && r.runners_up.size() < 3; ++i) {
      r.runners_up.emplace_back(
          passing[i]->spec,
          absl::StrFormat("passes, but KV %.3fx < %.3fx", passing[i]->ratio(), best.ratio()));
    }
  }
  // The failures that would have won on ratio explain what the thresholds cost.
  std::vector<const ConfigResult*> tempting;
  for (const ConfigResult* c : failing) {
    if (!r.found || c->ratio() > r.ratio) tempting.push_back(c);
  }
  std::sort(tempting.begin(), tempting.end(),
            [](const ConfigResult* a, const ConfigResult* b) { return a->ratio() > b->ratio(); });
  for (size_t i = 0; i < tempting.size() && i < 3; ++i) {
    r.runners_up.emplace_back(
        tempting[i]->spec,
        absl::StrFormat("KV %.3fx but fails: %s", tempting[i]->ratio(), tempting[i]->verdict));
  }
  if (!r.found && !failing.empty()) {
    // Closest: fewest tensors out of bounds, then the most faithful, then the best ratio.
    const ConfigResult* closest = *std::min_element(
        failing.begin(), failing.end(), [&](const ConfigResult* a, const ConfigResult* b) {
          const size_t fa = FailingTensors(o, *a), fb = FailingTensors(o, *b);
          if (fa != fb) return fa < fb;
          if (WorstCosine(*a) != WorstCosine(*b)) return WorstCosine(*a) > WorstCosine(*b);
          return a->ratio() > b->ratio();
        });
    r.spec = closest->spec;
    r.ratio = closest->ratio();
    r.why = absl::StrFormat(
        "nothing passes; closest is %s (KV %.3fx, %d tensors out of bounds): %s", closest->spec,
        closest->ratio(), FailingTensors(o, *closest), closest->verdict);
  }
  return r;
}

}  // namespace kvcomp

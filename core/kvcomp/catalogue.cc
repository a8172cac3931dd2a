#include "core/kvcomp/catalogue.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/kvcomp/preset.h"
#include "core/kvcomp/registry.h"

namespace kvcomp {
namespace {

const char* TypeName(ParamType t) {
  switch (t) {
    case ParamType::kInt:
      return "int";
    case ParamType::kFloat:
      return "float";
    case ParamType::kEnum:
      return "enum";
  }
  return "?";
}

const char* ExactnessName(PresetExactness e) {
  switch (e) {
    case PresetExactness::kLossless:
      return "lossless";
    case PresetExactness::kLossy:
      return "lossy";
    case PresetExactness::kAsArguments:
      return "as its arguments";
  }
  return "?";
}

CatalogueEntry StageEntry(const StageInfo& s) {
  CatalogueEntry e{.kind = "stage",
                   .name = std::string(s.name),
                   .id = s.id,
                   .summary = std::string(s.summary),
                   .exactness = s.lossless ? "lossless" : "lossy",
                   .takes_blocks = s.takes_blocks};
  std::vector<std::string> defaults;
  for (const ParamDef& p : s.params) {
    CatalogueParam c{.name = std::string(p.name),
                     .type = TypeName(p.type),
                     .default_value = FormatParamValue(p, p.default_value),
                     .help = std::string(p.help)};
    if (p.type == ParamType::kEnum) {
      for (absl::string_view choice : p.choices) c.choices.emplace_back(choice);
    } else {
      c.min = p.min;
      c.max = p.max;
    }
    defaults.push_back(absl::StrCat(c.name, "=", c.default_value));
    e.params.push_back(std::move(c));
  }
  e.usage =
      defaults.empty() ? e.name : absl::StrCat(e.name, "(", absl::StrJoin(defaults, ","), ")");
  return e;
}

}  // namespace

std::vector<CatalogueEntry> CodecCatalogue() {
  std::vector<CatalogueEntry> out;
  for (const auto& s : StageRegistry::Get().all()) out.push_back(StageEntry(*s));
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  for (bool policies : {false, true}) {
    for (const PresetInfo& p : PresetRegistry::Get().all()) {
      if (p.policy != policies) continue;
      out.push_back(CatalogueEntry{.kind = policies ? "policy" : "preset",
                                   .name = std::string(p.name),
                                   .summary = std::string(p.summary),
                                   .exactness = ExactnessName(p.exactness),
                                   .usage = std::string(p.usage)});
    }
  }
  return out;
}

}  // namespace kvcomp

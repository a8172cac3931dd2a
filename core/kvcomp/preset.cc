#include "core/kvcomp/preset.h"

#include <cstdio>
#include <cstdlib>

#include "core/kvcomp/internal/status_macros.h"
#include "core/kvcomp/presets/preset_list.h"
#include "core/kvcomp/registry.h"

namespace kvcomp {

const PresetRegistry& PresetRegistry::Get() {
  static const PresetRegistry* registry = [] {
    auto* r = new PresetRegistry;
    RegisterAllPresets(*r);
    return r;
  }();
  return *registry;
}

void PresetRegistry::Register(PresetInfo info) {
  if (Find(info.name) || StageRegistry::Get().FindByName(info.name)) {
    std::fprintf(stderr, "kvcomp: preset '%.*s' clashes with another name\n",
                 static_cast<int>(info.name.size()), info.name.data());
    std::abort();
  }
  presets_.push_back(std::move(info));
}

const PresetInfo* PresetRegistry::Find(absl::string_view name) const {
  for (const auto& p : presets_) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

}  // namespace kvcomp

// The one place presets and policies are registered. Adding one: write presets/<name>.cc
// defining `void Register<Name>Preset(PresetRegistry&)`, declare it below and call it.
#include "core/kvcomp/presets/preset_list.h"

#include "core/kvcomp/preset.h"

namespace kvcomp {

void RegisterBoundedPreset(PresetRegistry& r);
void RegisterRoutingPresets(PresetRegistry& r);
void RegisterLosslessPresets(PresetRegistry& r);
void RegisterProtectedPreset(PresetRegistry& r);

void RegisterAllPresets(PresetRegistry& r) {
  RegisterBoundedPreset(r);
  RegisterRoutingPresets(r);
  RegisterLosslessPresets(r);
  RegisterProtectedPreset(r);
}

}  // namespace kvcomp

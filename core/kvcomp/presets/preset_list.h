// Every preset and policy registers here; see preset_list.cc.
#pragma once

namespace kvcomp {
class PresetRegistry;
void RegisterAllPresets(PresetRegistry& registry);
}  // namespace kvcomp

// Every stage registers here; see stage_list.cc.
#pragma once

namespace kvcomp {
class StageRegistry;
void RegisterAllStages(StageRegistry& registry);
}  // namespace kvcomp

// The one place stages are registered. Adding a codec: write stages/<name>_stage.cc defining
// `void Register<Name>Stage(StageRegistry&)`, declare it below and call it in the list.
#include "kvcomp/stages/stage_list.h"

#include "kvcomp/registry.h"

namespace kvcomp {

void RegisterZstdStage(StageRegistry& r);

void RegisterAllStages(StageRegistry& r) { RegisterZstdStage(r); }

}  // namespace kvcomp

// The one place stages are registered. Adding a codec: write stages/<name>_stage.cc defining
// `void Register<Name>Stage(StageRegistry&)`, declare it below and call it in the list.
#include "kvcomp/stages/stage_list.h"

#include "kvcomp/registry.h"

namespace kvcomp {

// Lossless transforms and entropy backends.
void RegisterZstdStage(StageRegistry& r);
// Lossy stages.
void RegisterUniformQuantStage(StageRegistry& r);
void RegisterQuantStage(StageRegistry& r);
void RegisterBlockNormStage(StageRegistry& r);

void RegisterAllStages(StageRegistry& r) {
  RegisterZstdStage(r);
  RegisterUniformQuantStage(r);
  RegisterQuantStage(r);
  RegisterBlockNormStage(r);
}

}  // namespace kvcomp

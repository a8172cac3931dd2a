// The one place stages are registered. Adding a codec: write stages/<name>_stage.cc defining
// `void Register<Name>Stage(StageRegistry&)`, declare it below and call it in the list.
// Several people edit this list: add your lines, never rewrite the file.
#include "core/kvcomp/stages/stage_list.h"

#include "core/kvcomp/registry.h"

namespace kvcomp {

// Lossless transforms and entropy backends (IDs 1-31).
void RegisterZstdStage(StageRegistry& r);
void RegisterPlanesStage(StageRegistry& r);
void RegisterGearStage(StageRegistry& r);
void RegisterDedupeStage(StageRegistry& r);
void RegisterHuffStage(StageRegistry& r);
void RegisterQhuffStage(StageRegistry& r);
void RegisterCmStage(StageRegistry& r);
void RegisterRansStage(StageRegistry& r);
void RegisterDeltaStage(StageRegistry& r);  // delta and xor
void RegisterCastStage(StageRegistry& r);
void RegisterProtectStage(StageRegistry& r);
void RegisterReorderStage(StageRegistry& r);
void RegisterQsplitStage(StageRegistry& r);  // Q8_0/Q4_0 blocks -> scales + quants
// Lossy stages (IDs 32-63).
void RegisterUniformQuantStage(StageRegistry& r);
void RegisterQuantStage(StageRegistry& r);
void RegisterBlockNormStage(StageRegistry& r);

void RegisterAllStages(StageRegistry& r) {
  RegisterZstdStage(r);
  RegisterPlanesStage(r);
  RegisterGearStage(r);
  RegisterDedupeStage(r);
  RegisterHuffStage(r);
  RegisterQhuffStage(r);
  RegisterCmStage(r);
  RegisterRansStage(r);
  RegisterDeltaStage(r);
  RegisterCastStage(r);
  RegisterProtectStage(r);
  RegisterReorderStage(r);
  RegisterQsplitStage(r);
  RegisterUniformQuantStage(r);
  RegisterQuantStage(r);
  RegisterBlockNormStage(r);
}

}  // namespace kvcomp

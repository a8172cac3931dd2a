// One libFuzzer binary per target: KVCOMP_FUZZ_TARGET names the function (targets.h).
#include <cstddef>
#include <cstdint>

#include "targets.h"
#ifdef KVCOMP_FUZZ_SERVER
#include "server_target.h"
#include "service_target.h"
#endif

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kvcomp::fuzz::KVCOMP_FUZZ_TARGET(absl::MakeConstSpan(data, size));
  return 0;
}

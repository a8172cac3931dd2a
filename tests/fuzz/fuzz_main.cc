// One libFuzzer binary per target: KVCOMP_FUZZ_TARGET names the function (targets.h).
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/targets.h"
#ifdef KVCOMP_FUZZ_SERVER
#include "tests/fuzz/server_target.h"
#include "tests/fuzz/service_target.h"
#endif

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kvcomp::fuzz::KVCOMP_FUZZ_TARGET(absl::MakeConstSpan(data, size));
  return 0;
}

// XXH3-64 compiled for AVX2 (core/CMakeLists.txt builds this file alone with -mavx2 on x86-64;
// checksum.cc calls it only when the CPU has AVX2). xxhash.h's own inline build, so only
// the C header is compiled here: no C++ inline function of this file can leak AVX2 code into
// callers on other CPUs.
#if defined(__AVX2__)
#include <cstddef>
#include <cstdint>

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace kvcomp {

uint64_t Xxh3Avx2(const void* data, size_t size) { return XXH3_64bits(data, size); }

}  // namespace kvcomp
#endif

// A float's bit pattern and back, for tests that compare values bit for bit.
#ifndef KVCOMP_TESTS_CORE_FLOAT_BITS_H_
#define KVCOMP_TESTS_CORE_FLOAT_BITS_H_

#include <cstdint>

#include "absl/base/casts.h"

namespace kvcomp::test_bits {

inline uint32_t Bits(float f) { return absl::bit_cast<uint32_t>(f); }
inline float FromBits(uint32_t u) { return absl::bit_cast<float>(u); }

}  // namespace kvcomp::test_bits

#endif  // KVCOMP_TESTS_CORE_FLOAT_BITS_H_

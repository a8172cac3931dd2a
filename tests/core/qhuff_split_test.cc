// qhuff's split and its inverse: the path this CPU takes (AVX-512BW where it has it) gives the
// portable path's bytes, symbols, low bits and escapes alike, and Unslice undoes Split.
#include "core/kvcomp/stages/qhuff_split.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace kvcomp::qhuff {
namespace {

// Values whose quotients at shift k are mostly small, with escapes among them, as qhuff sees.
std::vector<uint16_t> Values(size_t n, int k, uint32_t seed) {
  std::mt19937 rng(seed);
  std::geometric_distribution<int> quotient(0.2);
  std::vector<uint16_t> v(n);
  for (uint16_t& x : v) {
    const uint32_t low = k ? rng() & ((1u << k) - 1) : 0;
    const uint32_t q = rng() % 50 == 0 ? rng() : static_cast<uint32_t>(quotient(rng));
    x = static_cast<uint16_t>((q << k) | low);
  }
  return v;
}

TEST(QhuffSplitTest, EveryPathGivesThePortableBytesAndUnsliceUndoesIt) {
  std::printf("split path: %s\n", SplitPath());
  for (const size_t n : {0, 1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 1000, 4099}) {
    for (int k = 0; k < 16; ++k) {
      SCOPED_TRACE(::testing::Message() << "n=" << n << " k=" << k);
      const std::vector<uint16_t> v = Values(n, k, static_cast<uint32_t>(n * 16 + k));
      const size_t low_bytes = SlicedBytes(n, k);
      std::vector<uint8_t> sym(n), low(low_bytes), want_sym(n), want_low(low_bytes);
      std::vector<uint16_t> esc, want_esc;
      Split(v.data(), n, k, sym.data(), low.data(), &esc);
      SplitPortable(v.data(), n, k, want_sym.data(), want_low.data(), &want_esc);
      ASSERT_EQ(sym, want_sym);
      ASSERT_EQ(low, want_low);
      ASSERT_EQ(esc, want_esc);

      std::vector<uint16_t> back(n), want_back(n);
      Unslice(sym.data(), low.data(), n, k, back.data());
      UnslicePortable(sym.data(), low.data(), n, k, want_back.data());
      ASSERT_EQ(back, want_back);
      size_t e = 0;
      for (size_t i = 0; i < n; ++i) {
        if (sym[i] == kEscape) {
          ASSERT_LT(e, esc.size());
          back[i] = esc[e++];
        }
      }
      ASSERT_EQ(e, esc.size());
      ASSERT_EQ(back, v);
    }
  }
}

}  // namespace
}  // namespace kvcomp::qhuff

// uquant's one-pass FP16 encoders (AVX2 + F16C, and AVX-512), each against the general path's
// definition: the same codes and the same error sums, to the bit, for every tail length, for
// steps where codes move toward zero at FP16's limit, and for the inputs they must decline. And
// its one-pass decoders, against DecodeChunk and NarrowChunk's arithmetic.
#include "kvcomp/stages/uquant_fp16.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kvcomp/dtype.h"
#include "kvcomp/stages/float_io.h"

namespace kvcomp {
namespace {

struct Reference {
  std::vector<uint8_t> codes;
  ErrorSums sums;
  int64_t max_code = 0;
};

// QuantizeChunk, Dequantize, RoundThrough and AddErrorSumsChunk, element by element.
Reference Expected(const std::vector<uint16_t>& half, float inv, float s, float overflow) {
  const size_t n = half.size();
  std::vector<float> x(n);
  HalfToFloat(half.data(), x.data(), n);
  Reference r;
  r.codes.resize(2 * n);
  std::vector<float> y(n);
  for (size_t i = 0; i < n; ++i) {
    int32_t q = static_cast<int32_t>(RoundEven(std::min(std::max(x[i] * inv, -4e6f), 4e6f)));
    if (std::fabs(static_cast<float>(q) * s) >= overflow) q -= (q > 0) - (q < 0);
    r.max_code = std::max<int64_t>(r.max_code, std::abs(q));
    const uint16_t z = ZigZag16(q);
    std::memcpy(&r.codes[2 * i], &z, 2);
    y[i] = static_cast<float>(q) * s;
  }
  RoundThrough(DType::kFP16, y.data(), n);
  for (size_t first = 0; first < n; first += kErrorChunk) {
    const size_t m = std::min(kErrorChunk, n - first);
    std::vector<float> xs(x.begin() + first, x.begin() + first + m),
        ys(y.begin() + first, y.begin() + first + m);
    xs.resize(m + 8), ys.resize(m + 8);
    AddErrorSumsChunk(xs.data(), ys.data(), m, &r.sums);
  }
  return r;
}

using uquant_internal::HalfPath;

// The one-pass paths this CPU has.
std::vector<HalfPath> Paths() {
  std::vector<HalfPath> paths;
  for (HalfPath p : {HalfPath::kAvx2, HalfPath::kAvx512}) {
    if (p <= uquant_internal::BestHalfPath()) paths.push_back(p);
  }
  return paths;
}

const char* Name(HalfPath p) { return p == HalfPath::kAvx512 ? "avx512" : "avx2"; }

void ExpectSame(HalfPath path, const std::vector<uint16_t>& half, double step,
                const std::string& where) {
  const std::string at = std::string(Name(path)) + " " + where;
  const size_t n = half.size();
  const float inv = static_cast<float>(1.0 / step), s = static_cast<float>(step);
  const float overflow = step >= 2 ? 65520.0f : INFINITY;  // as uquant sets it for FP16
  const Reference want = Expected(half, inv, s, overflow);
  std::vector<uint8_t> codes(2 * n);
  ErrorSums sums;
  int64_t max_code = -1;
  ASSERT_TRUE(uquant_internal::QuantizeHalfOn(path, reinterpret_cast<const uint8_t*>(half.data()),
                                              n, inv, s, overflow, codes.data(), &sums, &max_code))
      << at;
  EXPECT_EQ(max_code, want.max_code) << at;
  if (want.max_code > 32767) return;  // refused by the caller: the codes do not matter
  EXPECT_TRUE(codes == want.codes) << at;
  EXPECT_EQ(sums.abs_err, want.sums.abs_err) << at;
  EXPECT_EQ(sums.sq_err, want.sums.sq_err) << at;
  EXPECT_EQ(sums.abs_x, want.sums.abs_x) << at;
  EXPECT_EQ(sums.xx, want.sums.xx) << at;
  EXPECT_EQ(sums.yy_minus_xx, want.sums.yy_minus_xx) << at;
  EXPECT_EQ(sums.max_abs, want.sums.max_abs) << at;
}

TEST(UquantFp16Test, CodesAndSumsMatchTheGeneralPathBitForBit) {
  if (!uquant_internal::HasOnePassPath())
    GTEST_SKIP() << "no AVX2 + F16C here: uquant takes the general path";
  std::printf("one-pass paths here: %zu (the widest: %s)\n", Paths().size(),
              Name(uquant_internal::BestHalfPath()));
  std::mt19937 rng(5);
  std::normal_distribution<float> g(0, 2);
  for (const size_t n : {size_t{1}, size_t{7}, size_t{8}, size_t{15}, size_t{16}, size_t{23},
                         size_t{4095}, size_t{4096}, size_t{4097}, size_t{4111}, size_t{8192},
                         size_t{10003}, size_t{12290}, size_t{16387}}) {
    std::vector<float> v(n);
    for (float& f : v) f = g(rng);
    std::vector<uint16_t> half(n);
    FloatToHalf(v.data(), half.data(), n);
    for (const double step : {0.0005, 0.03}) {
      for (HalfPath p : Paths()) {
        ExpectSame(p, half, step,
                   "gaussian n=" + std::to_string(n) + " step=" + std::to_string(step));
      }
    }
    // FP16's largest magnitude: at step 3000 its code moves toward zero (it would decode to
    // infinity); at step 0.001 it is out of range, which the caller refuses.
    half[0] = 0x7bff;
    half[n / 2] = 0xfbff;
    for (const double step : {3000.0, 0.001}) {
      for (HalfPath p : Paths()) {
        ExpectSame(p, half, step,
                   "extremes n=" + std::to_string(n) + " step=" + std::to_string(step));
      }
    }
  }
}

TEST(UquantFp16Test, DeclinesNonFiniteValues) {
  if (!uquant_internal::HasOnePassPath())
    GTEST_SKIP() << "no AVX2 + F16C here: uquant takes the general path";
  for (const uint16_t bad : {uint16_t{0x7c00}, uint16_t{0xfc00}, uint16_t{0x7e00}}) {
    // Either chunk of a pair (AVX-512), a chunk after the pairs, its 8-value blocks and its tail.
    for (const size_t at :
         {size_t{0}, size_t{4100}, size_t{8190}, size_t{9000}, size_t{13190}, size_t{13202}}) {
      std::vector<uint16_t> half(13203, 0x3c00);
      half[at] = bad;
      std::vector<uint8_t> codes(2 * half.size());
      ErrorSums sums;
      int64_t max_code = 0;
      for (HalfPath p : Paths()) {
        EXPECT_FALSE(uquant_internal::QuantizeHalfOn(
            p, reinterpret_cast<const uint8_t*>(half.data()), half.size(), 100, 0.01f, INFINITY,
            codes.data(), &sums, &max_code))
            << Name(p) << ": value " << bad << " at " << at;
      }
    }
  }
}

TEST(UquantFp16Test, DecodedHalvesMatchTheGeneralPathBitForBit) {
  if (!uquant_internal::HasOnePassPath())
    GTEST_SKIP() << "no AVX2 + F16C here: uquant takes the general path";
  // Every code, then prefixes of it for every tail length of both block widths; steps that give
  // subnormal halves, ordinary ones, and ones whose largest codes round to infinity (a corrupt
  // or hand-made frame: the decoder must still agree with itself).
  std::vector<uint16_t> codes(65536);
  for (size_t i = 0; i < codes.size(); ++i) codes[i] = static_cast<uint16_t>(i * 40503u);
  for (const float s : {1e-9f, 3e-6f, 0.0123f, 0.5f, 7.0f}) {
    for (const size_t n : {size_t{65536}, size_t{0}, size_t{1}, size_t{7}, size_t{8}, size_t{9},
                           size_t{15}, size_t{16}, size_t{17}, size_t{31}, size_t{8191}}) {
      std::vector<float> values(n);
      for (size_t i = 0; i < n; ++i) values[i] = static_cast<float>(UnZigZag16(codes[i])) * s;
      std::vector<uint16_t> want(n);
      FloatToHalf(values.data(), want.data(), n);
      for (HalfPath p : Paths()) {
        // One half past the end, which the decoder must not write.
        std::vector<uint16_t> got(n + 1, 0xabcd);
        ASSERT_TRUE(
            uquant_internal::DequantizeHalfOn(p, reinterpret_cast<const uint8_t*>(codes.data()), n,
                                              s, reinterpret_cast<uint8_t*>(got.data())));
        EXPECT_EQ(got[n], 0xabcd) << Name(p) << " wrote past " << n;
        got.pop_back();
        EXPECT_TRUE(got == want) << Name(p) << " n=" << n << " step=" << s;
      }
    }
  }
}

}  // namespace
}  // namespace kvcomp

// uquant's one-pass FP16 and BF16 encoders (AVX2 + F16C, and AVX-512), each against the general
// path's definition: the same codes and the same error sums, to the bit, for every tail length,
// for steps where codes move toward zero at the format's limit, and for the inputs they must
// decline. And its one-pass decoders, against DecodeChunk and NarrowChunk's arithmetic.
#include "core/kvcomp/stages/uquant_16bit.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/kvcomp/dtype.h"
#include "core/kvcomp/stages/float_io.h"

namespace kvcomp {
namespace {

using uquant_internal::Format16;
using uquant_internal::Path16;

// A format as the tests drive it: its dtype, its largest finite value (both signs), a step at
// which that value's code moves toward zero (it would decode to infinity; FP16's is tested),
// three non-finite values and 1.0.
struct Format {
  Format16 format;
  DType dtype;
  const char* name;
  uint16_t largest, neg_largest;
  double overflowing_step;
  uint16_t non_finite[3];
  uint16_t one;
};
const Format kFormats[] = {
    {Format16::kFP16,
     DType::kFP16,
     "fp16",
     0x7bff,
     0xfbff,
     3000.0,
     {0x7c00, 0xfc00, 0x7e00},
     0x3c00},
    {Format16::kBF16, DType::kBF16, "bf16", 0x7f7f, 0xff7f, 1e37, {0x7f80, 0xff80, 0x7fc0}, 0x3f80},
};

struct Reference {
  std::vector<uint8_t> codes;
  ErrorSums sums;
  int64_t max_code = 0;
};

// QuantizeChunk, Dequantize, RoundThrough and AddErrorSumsChunk, element by element.
Reference Expected(DType dtype, const std::vector<uint16_t>& bits, float inv, float s,
                   float overflow) {
  const size_t n = bits.size();
  std::vector<float> x(n);
  ToFloat(dtype, reinterpret_cast<const uint8_t*>(bits.data()), x.data(), n);
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
  RoundThrough(dtype, y.data(), n);
  for (size_t first = 0; first < n; first += kErrorChunk) {
    const size_t m = std::min(kErrorChunk, n - first);
    std::vector<float> xs(x.begin() + first, x.begin() + first + m),
        ys(y.begin() + first, y.begin() + first + m);
    xs.resize(m + 8), ys.resize(m + 8);
    AddErrorSumsChunk(xs.data(), ys.data(), m, &r.sums);
  }
  return r;
}

// The one-pass paths this CPU has.
std::vector<Path16> Paths() {
  std::vector<Path16> paths;
  for (Path16 p : {Path16::kAvx2, Path16::kAvx512}) {
    if (p <= uquant_internal::BestPath16()) paths.push_back(p);
  }
  return paths;
}

const char* Name(Path16 p) { return p == Path16::kAvx512 ? "avx512" : "avx2"; }

std::vector<uint16_t> Narrow(DType dtype, const std::vector<float>& v) {
  std::vector<uint16_t> bits(v.size());
  (dtype == DType::kFP16 ? FloatToHalf : FloatToBf16)(v.data(), bits.data(), v.size());
  return bits;
}

void ExpectSame(Path16 path, const Format& f, const std::vector<uint16_t>& bits, double step,
                const std::string& where) {
  const std::string at = std::string(Name(path)) + " " + f.name + " " + where;
  const size_t n = bits.size();
  const float inv = static_cast<float>(1.0 / step), s = static_cast<float>(step);
  const float overflow = uquant_internal::OverflowAt(f.format, step);  // as uquant sets it
  const Reference want = Expected(f.dtype, bits, inv, s, overflow);
  std::vector<uint8_t> codes(2 * n);
  ErrorSums sums;
  int64_t max_code = -1;
  ASSERT_TRUE(uquant_internal::Quantize16On(path, f.format,
                                            reinterpret_cast<const uint8_t*>(bits.data()), n, inv,
                                            s, overflow, codes.data(), &sums, &max_code))
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

TEST(Uquant16BitTest, CodesAndSumsMatchTheGeneralPathBitForBit) {
  if (!uquant_internal::HasOnePassPath())
    GTEST_SKIP() << "no AVX2 + F16C here: uquant takes the general path";
  std::printf("one-pass paths here: %zu (the widest: %s)\n", Paths().size(),
              Name(uquant_internal::BestPath16()));
  std::mt19937 rng(5);
  std::normal_distribution<float> g(0, 2);
  for (const Format& f : kFormats) {
    for (const size_t n : {size_t{1}, size_t{7}, size_t{8}, size_t{15}, size_t{16}, size_t{23},
                           size_t{4095}, size_t{4096}, size_t{4097}, size_t{4111}, size_t{8192},
                           size_t{10003}, size_t{12290}, size_t{16387}}) {
      std::vector<float> v(n);
      for (float& x : v) x = g(rng);
      std::vector<uint16_t> bits = Narrow(f.dtype, v);
      for (const double step : {0.0005, 0.03}) {
        for (Path16 p : Paths()) {
          ExpectSame(p, f, bits, step,
                     "gaussian n=" + std::to_string(n) + " step=" + std::to_string(step));
        }
      }
      // The format's largest magnitude: at the overflowing step its code moves toward zero; at
      // step 0.001 it is out of range, which the caller refuses. BF16's largest squared
      // overflows a float sum, so there the kernels decline and the general path sums in double.
      bits[0] = f.largest;
      bits[n / 2] = f.neg_largest;
      for (const double step : {f.overflowing_step, 0.001}) {
        const std::string at = "extremes n=" + std::to_string(n) + " step=" + std::to_string(step);
        for (Path16 p : Paths()) {
          if (f.format == Format16::kFP16) {
            ExpectSame(p, f, bits, step, at);
            continue;
          }
          std::vector<uint8_t> codes(2 * n);
          ErrorSums sums;
          int64_t max_code;
          EXPECT_FALSE(uquant_internal::Quantize16On(
              p, f.format, reinterpret_cast<const uint8_t*>(bits.data()), n,
              static_cast<float>(1 / step), static_cast<float>(step), INFINITY, codes.data(), &sums,
              &max_code))
              << Name(p) << " bf16 " << at;
        }
      }
    }
  }
}

TEST(Uquant16BitTest, DeclinesNonFiniteValues) {
  if (!uquant_internal::HasOnePassPath())
    GTEST_SKIP() << "no AVX2 + F16C here: uquant takes the general path";
  for (const Format& f : kFormats) {
    for (const uint16_t bad : f.non_finite) {
      // Either chunk of a pair (AVX-512), a chunk after the pairs, its 8-value blocks, its tail.
      for (const size_t at :
           {size_t{0}, size_t{4100}, size_t{8190}, size_t{9000}, size_t{13190}, size_t{13202}}) {
        std::vector<uint16_t> bits(13203, f.one);
        bits[at] = bad;
        std::vector<uint8_t> codes(2 * bits.size());
        ErrorSums sums;
        int64_t max_code = 0;
        for (Path16 p : Paths()) {
          EXPECT_FALSE(uquant_internal::Quantize16On(
              p, f.format, reinterpret_cast<const uint8_t*>(bits.data()), bits.size(), 100, 0.01f,
              INFINITY, codes.data(), &sums, &max_code))
              << Name(p) << " " << f.name << ": value " << bad << " at " << at;
        }
      }
    }
  }
}

TEST(Uquant16BitTest, DecodedValuesMatchTheGeneralPathBitForBit) {
  if (!uquant_internal::HasOnePassPath())
    GTEST_SKIP() << "no AVX2 + F16C here: uquant takes the general path";
  // Every code, then prefixes of it for every tail length of both block widths; steps that give
  // subnormal values, ordinary ones, and ones whose largest codes round to infinity (a corrupt
  // or hand-made frame: the decoder must still agree with itself).
  std::vector<uint16_t> codes(65536);
  for (size_t i = 0; i < codes.size(); ++i) codes[i] = static_cast<uint16_t>(i * 40503u);
  for (const Format& f : kFormats) {
    for (const float s : {1e-9f, 3e-6f, 0.0123f, 0.5f, 7.0f, 1e-40f, 1e34f, 3e38f}) {
      for (const size_t n : {size_t{65536}, size_t{0}, size_t{1}, size_t{7}, size_t{8}, size_t{9},
                             size_t{15}, size_t{16}, size_t{17}, size_t{31}, size_t{8191}}) {
        std::vector<float> values(n);
        for (size_t i = 0; i < n; ++i) values[i] = static_cast<float>(UnZigZag16(codes[i])) * s;
        const std::vector<uint16_t> want = Narrow(f.dtype, values);
        for (Path16 p : Paths()) {
          // One value past the end, which the decoder must not write.
          std::vector<uint16_t> got(n + 1, 0xabcd);
          ASSERT_TRUE(uquant_internal::Dequantize16On(
              p, f.format, reinterpret_cast<const uint8_t*>(codes.data()), n, s,
              reinterpret_cast<uint8_t*>(got.data())));
          EXPECT_EQ(got[n], 0xabcd) << Name(p) << " wrote past " << n;
          got.pop_back();
          EXPECT_TRUE(got == want) << Name(p) << " " << f.name << " n=" << n << " step=" << s;
        }
      }
    }
  }
}

}  // namespace
}  // namespace kvcomp

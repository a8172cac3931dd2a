#include "core/kvcomp/synth/llama_synth.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/kvcomp/dtype.h"

namespace kvcomp::synth {
namespace {

uint64_t SplitMix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(SplitMix(seed)) {}
  uint64_t Next() { return s_ = SplitMix(s_); }
  double Uniform() { return (Next() >> 11) * (1.0 / 9007199254740992.0); }
  double Normal() {
    const double u = std::max(Uniform(), 1e-300), v = Uniform();
    return std::sqrt(-2.0 * std::log(u)) * std::cos(6.283185307179586 * v);
  }

 private:
  uint64_t s_;
};

constexpr int kVocab = 128256;
constexpr int kBos = 128000;

}  // namespace

Tensor LlamaKv(const LlamaShape& s, int layer, Kind kind) {
  const int H = s.kv_heads, T = s.tokens, D = s.head_dim;
  const bool is_k = kind == Kind::kKey;
  // Token ids are shared by every layer of a run.
  std::vector<int> tok(T);
  Rng trng(s.seed * 1000003);
  for (int t = 0; t < T; ++t) {
    tok[t] = t == 0 ? kBos : static_cast<int>(std::exp(trng.Uniform() * std::log(kVocab))) - 1;
  }
  const uint64_t lk = s.seed ^ (uint64_t(layer) << 32) ^ (is_k ? 0x4b : 0x56);
  const double layer_scale = is_k ? 1.0 + 1.5 * layer / std::max(1, s.layers - 1)
                                  : 0.1 + 0.9 * layer / std::max(1, s.layers - 1);
  const double mix = layer == 0 ? 0.0 : 0.6;  // AR(1) weight of the context
  std::vector<float> x(static_cast<size_t>(H) * T * D);
  std::vector<double> chan(D), h(D), e(D);
  for (int hd = 0; hd < H; ++hd) {
    Rng crng(lk * 31 + hd);
    for (int d = 0; d < D; ++d) chan[d] = std::exp(0.4 * crng.Normal());
    if (is_k) {
      // Outliers: 4 channels (2 RoPE pairs) among the lowest-frequency quarter.
      for (int k = 0; k < 2; ++k) {
        const int i = D / 2 - 1 - static_cast<int>(crng.Next() % (D / 8));
        chan[i] *= 8.0;
        chan[i + D / 2] *= 8.0;
      }
    }
    std::fill(h.begin(), h.end(), 0.0);
    for (int t = 0; t < T; ++t) {
      Rng erng(SplitMix(uint64_t(tok[t]) * 0x100000001b3ull ^ lk ^ uint64_t(hd) << 48));
      for (int d = 0; d < D; ++d) e[d] = erng.Normal();
      const double tok_scale = is_k ? 1.0 : std::exp(0.3 * erng.Normal());
      for (int d = 0; d < D; ++d) {
        h[d] = mix * h[d] + std::sqrt(1 - mix * mix) * e[d];
      }
      float* row = &x[(static_cast<size_t>(hd) * T + t) * D];
      for (int d = 0; d < D; ++d) {
        double v = layer_scale * chan[d] * tok_scale * h[d];
        if (t == 0) v = is_k ? 3.0 * layer_scale * chan[d] : 0.05 * layer_scale * e[d];
        row[d] = static_cast<float>(v);
      }
      if (is_k) {
        for (int i = 0; i < D / 2; ++i) {
          const double ang = t * std::pow(s.rope_theta, -2.0 * i / D);
          const double c = std::cos(ang), sn = std::sin(ang);
          const double a = row[i], b = row[i + D / 2];
          row[i] = static_cast<float>(a * c - b * sn);
          row[i + D / 2] = static_cast<float>(a * sn + b * c);
        }
      }
    }
  }
  Tensor out;
  out.meta.dtype = s.dtype;
  out.meta.layout = Layout::kHeadMajor;
  out.meta.kind = kind;
  out.meta.layer = layer;
  out.meta.shape = {H, T, D};
  out.bytes.resize(x.size() * DTypeSize(s.dtype));
  if (s.dtype == DType::kFP32) {
    std::memcpy(out.bytes.data(), x.data(), out.bytes.size());
  } else if (s.dtype == DType::kFP16) {
    FloatToHalf(x.data(), reinterpret_cast<uint16_t*>(out.bytes.data()), x.size());
  } else {
    FloatToBf16(x.data(), reinterpret_cast<uint16_t*>(out.bytes.data()), x.size());
  }
  return out;
}

}  // namespace kvcomp::synth

// quant(bits, group, block, clip): affine quantisation to `bits` bits with a (min, scale)
// pair per group. Groups follow KIVI: per channel suits K (outlier channels get their own
// range), per token suits V. `clip` < 1 first clips each group to its central quantile range
// (the seed's clip + quant). Per-group (min, scale) are stored as float32 and counted.
// Layout: docs/FORMAT.md#quant-id-33.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/kvcomp/registry.h"
#include "core/kvcomp/stage_ids.h"
#include "core/kvcomp/stages/float_io.h"

namespace kvcomp {
namespace {

enum Group { kChannel = 0, kToken = 1, kBlock = 2, kTensor = 3 };

// Round to nearest, ties to even, for 0 <= v < 2^23: the same result as std::nearbyint in the
// default rounding mode, without its library call (the core is built for baseline x86-64,
// which has no SSE4.1 round instruction).
inline float RoundHalfEven(float v) {
  constexpr float kMagic = 8388608.0f;  // 2^23: the sum keeps no fraction bits
  return (v + kMagic) - kMagic;         // IEEE arithmetic: not folded without -ffast-math
}

class QuantStage final : public Stage {
 public:
  using Stage::Stage;
  int bits() const { return static_cast<int>(values()[0]); }
  Group group() const { return static_cast<Group>(values()[1]); }
  uint64_t block() const { return static_cast<uint64_t>(values()[2]); }
  double clip() const { return values()[3]; }

  uint64_t NumGroups(const Geometry& g) const {
    switch (group()) {
      case kChannel:
        return g.planes * g.cols;
      case kToken:
        return g.planes * g.rows;
      case kBlock:
        return (g.size() + block() - 1) / block();
      case kTensor:
        break;
    }
    return g.size() ? 1 : 0;
  }

  // Calls fn(i0, n, k, step) for runs of n consecutive elements from flat index i0 whose
  // groups are k, k + step, k + 2 step... (step 1 per channel, else 0): every element's group
  // without a 64-bit division per element, which cost more than the quantisation itself.
  template <typename Fn>
  void ForEachRun(const Geometry& g, Fn fn) const {
    if (g.size() == 0) return;  // also keeps huge empty geometries from looping
    switch (group()) {
      case kChannel:
        for (uint64_t p = 0; p < g.planes; ++p) {
          for (uint64_t r = 0; r < g.rows; ++r)
            fn((p * g.rows + r) * g.cols, g.cols, p * g.cols, 1);
        }
        return;
      case kToken:
        for (uint64_t row = 0; row < g.planes * g.rows; ++row) fn(row * g.cols, g.cols, row, 0);
        return;
      case kBlock:
        for (uint64_t i = 0, k = 0; i < g.size(); i += block(), ++k) {
          fn(i, std::min(block(), g.size() - i), k, 0);
        }
        return;
      case kTensor:
        fn(0, g.size(), 0, 0);
        return;
    }
  }

  absl::StatusOr<std::vector<StreamDesc>> Plan(absl::Span<const StreamDesc> in) const override {
    const absl::StatusOr<size_t> f = FindFloatStream("quant", in);
    if (!f.ok()) return f.status();
    const StreamDesc& d = in[*f];
    const Geometry params{1, NumGroups(d.geom), 2};
    return AppendOthers({{ElemType::kU16, d.geom}, {ElemType::kF32, params}}, in);
  }

  absl::Status DoEncode(const Streams& in, Streams* out) const override {
    const Stream& src = in[FloatStreamIndex(in)];
    std::vector<float> x;
    if (absl::Status s = LoadFinite("quant", src, &x); !s.ok()) return s;
    const Geometry& g = src.desc().geom;
    const uint64_t groups = NumGroups(g);
    std::vector<float> lo(groups, INFINITY), hi(groups, -INFINITY);
    if (clip() >= 1.0) {
      ForEachRun(g, [&](uint64_t i0, uint64_t n, uint64_t k0, uint64_t step) {
        for (uint64_t j = 0; j < n; ++j) {
          const uint64_t k = k0 + j * step;
          lo[k] = std::min(lo[k], x[i0 + j]);
          hi[k] = std::max(hi[k], x[i0 + j]);
        }
      });
    } else {
      ClipRanges(g, x, &lo, &hi);
    }
    const uint32_t levels = (1u << bits()) - 1;
    const float max_code = static_cast<float>(levels);
    std::vector<float> params(groups * 2);
    for (uint64_t k = 0; k < groups; ++k) {
      float scale = hi[k] > lo[k] ? (hi[k] - lo[k]) / levels : 0.0f;
      // A range wider than FLT_MAX (values near both -FLT_MAX and FLT_MAX) overflows in float;
      // its step does not (levels >= 3), and an infinite step would decode to NaN.
      if (!std::isfinite(scale)) scale = static_cast<float>((double{hi[k]} - lo[k]) / levels);
      params[2 * k] = lo[k] <= hi[k] ? lo[k] : 0.0f;
      params[2 * k + 1] = scale;
    }
    std::vector<uint8_t> codes(x.size() * 2);
    ForEachRun(g, [&](uint64_t i0, uint64_t n, uint64_t k0, uint64_t step) {
      for (uint64_t j = 0; j < n; ++j) {
        const uint64_t k = k0 + j * step;
        const float scale = params[2 * k + 1];
        const float v = scale > 0 ? (x[i0 + j] - params[2 * k]) / scale : 0.0f;
        // x - min can still overflow to infinity (then v is inf, clamped); NaN cannot arise
        // with a finite step, and would go to 0 here rather than into an undefined cast.
        const float in_range = v > 0.0f ? std::min(v, max_code) : 0.0f;
        const uint16_t c = static_cast<uint16_t>(RoundHalfEven(in_range));
        std::memcpy(&codes[2 * (i0 + j)], &c, 2);
      }
    });
    out->push_back(Stream::Own({ElemType::kU16, g}, std::move(codes)));
    std::vector<uint8_t> pbytes(params.size() * 4);
    // An empty tensor has no groups, and memcpy with a null buffer is undefined even for 0
    // bytes (found by fuzz_roundtrip: tests/fuzz/regressions/roundtrip/quant-*).
    if (!params.empty()) std::memcpy(pbytes.data(), params.data(), pbytes.size());
    out->push_back(Stream::Own({ElemType::kF32, {1, groups, 2}}, std::move(pbytes)));
    PassOthers(in, out);
    return absl::OkStatus();
  }

  absl::Status DoDecode(const Streams& encoded, absl::Span<const StreamDesc> want,
                        absl::Span<uint8_t> into, Streams* decoded) const override {
    const size_t f = FloatStreamIndex(want);
    const StreamDesc& d = want[f];
    const Geometry& g = d.geom;
    const uint64_t groups = NumGroups(g);
    std::vector<float> params(groups * 2);
    if (!params.empty()) std::memcpy(params.data(), encoded[1].data().data(), params.size() * 4);
    for (float p : params) {
      if (!std::isfinite(p)) return absl::DataLossError("quant: non-finite group parameters");
    }
    const uint32_t levels = (1u << bits()) - 1;
    std::vector<float> x(g.size());
    const uint8_t* codes = encoded[0].data().data();
    uint16_t max_seen = 0;  // checked once at the end, so that the loop vectorises
    ForEachRun(g, [&](uint64_t i0, uint64_t n, uint64_t k0, uint64_t step) {
      for (uint64_t j = 0; j < n; ++j) {
        const uint64_t k = k0 + j * step;
        uint16_t c;
        std::memcpy(&c, codes + 2 * (i0 + j), 2);
        max_seen = std::max(max_seen, c);
        x[i0 + j] = params[2 * k] + static_cast<float>(c) * params[2 * k + 1];
      }
    });
    if (max_seen > levels) return absl::DataLossError("quant: code out of range");
    decoded->push_back(StoreAs(d, f == 0 ? into : absl::Span<uint8_t>(), x.data()));
    return RestoreOthers("quant", encoded, 2, want, decoded);
  }

 private:
  // Each group's range becomes its central `clip` quantile range.
  void ClipRanges(const Geometry& g, const std::vector<float>& x, std::vector<float>* lo,
                  std::vector<float>* hi) const {
    std::vector<std::vector<float>> members(lo->size());
    ForEachRun(g, [&](uint64_t i0, uint64_t n, uint64_t k0, uint64_t step) {
      for (uint64_t j = 0; j < n; ++j) members[k0 + j * step].push_back(x[i0 + j]);
    });
    const double tail = (1.0 - clip()) / 2;
    for (uint64_t k = 0; k < members.size(); ++k) {
      auto& m = members[k];
      if (m.empty()) continue;
      const size_t a = static_cast<size_t>(std::floor(tail * (m.size() - 1)));
      const size_t b = m.size() - 1 - a;
      std::nth_element(m.begin(), m.begin() + a, m.end());
      (*lo)[k] = m[a];
      std::nth_element(m.begin(), m.begin() + b, m.end());
      (*hi)[k] = m[b];
    }
  }
};

}  // namespace

void RegisterQuantStage(StageRegistry& r) {
  r.Register(StageInfo{
      .id = stage_id::kQuant,
      .name = "quant",
      .summary = "affine quantisation to N bits per channel, token, block or tensor (lossy)",
      .lossless = false,
      .params = {{.name = "bits",
                  .type = ParamType::kInt,
                  .default_value = 8,
                  .min = 2,
                  .max = 16,
                  .help = "code width"},
                 {.name = "group",
                  .type = ParamType::kEnum,
                  .default_value = kChannel,
                  .choices = {"channel", "token", "block", "tensor"},
                  .help = "what shares one (min, scale) pair"},
                 {.name = "block",
                  .type = ParamType::kInt,
                  .default_value = 64,
                  .min = 1,
                  .max = 1 << 20,
                  .help = "elements per group when group=block"},
                 {.name = "clip",
                  .type = ParamType::kFloat,
                  .default_value = 1.0,
                  .min = 0.5,
                  .max = 1.0,
                  .help = "central fraction of each group kept inside its range"}},
      .make = MakeStage<QuantStage>,
  });
}

}  // namespace kvcomp

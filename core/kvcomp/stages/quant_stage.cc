// quant(bits, group, block, clip): affine quantisation to `bits` bits with a (min, scale)
// pair per group. Groups follow KIVI: per channel suits K (outlier channels get their own
// range), per token suits V. `clip` < 1 first clips each group to its central quantile range
// (the seed's clip + quant). Per-group (min, scale) are stored as float32 and counted.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "kvcomp/registry.h"
#include "kvcomp/stages/float_io.h"

namespace kvcomp {
namespace {

enum Group { kChannel = 0, kToken = 1, kBlock = 2, kTensor = 3 };

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

  // Group of the element at flat index i = (p * rows + r) * cols + c.
  uint64_t GroupOf(const Geometry& g, uint64_t i) const {
    switch (group()) {
      case kChannel:
        return (i / (g.rows * g.cols)) * g.cols + i % g.cols;
      case kToken:
        return i / g.cols;
      case kBlock:
        return i / block();
      case kTensor:
        break;
    }
    return 0;
  }

  absl::StatusOr<std::vector<StreamDesc>> Plan(absl::Span<const StreamDesc> in) const override {
    if (in.size() != 1 || !IsFloatType(in[0].type)) {
      return absl::InvalidArgumentError("quant takes one float stream; put it first");
    }
    const Geometry params{1, NumGroups(in[0].geom), 2};
    return std::vector<StreamDesc>{{ElemType::kU16, in[0].geom}, {ElemType::kF32, params}};
  }

  absl::Status Encode(const Streams& in, Streams* out) const override {
    std::vector<float> x;
    if (absl::Status s = LoadFinite("quant", in[0], &x); !s.ok()) return s;
    const Geometry& g = in[0].desc().geom;
    const uint64_t groups = NumGroups(g);
    std::vector<float> lo(groups, INFINITY), hi(groups, -INFINITY);
    if (clip() >= 1.0) {
      for (uint64_t i = 0; i < x.size(); ++i) {
        const uint64_t k = GroupOf(g, i);
        lo[k] = std::min(lo[k], x[i]);
        hi[k] = std::max(hi[k], x[i]);
      }
    } else {
      ClipRanges(g, x, &lo, &hi);
    }
    const uint32_t levels = (1u << bits()) - 1;
    std::vector<float> params(groups * 2);
    for (uint64_t k = 0; k < groups; ++k) {
      const float scale = hi[k] > lo[k] ? (hi[k] - lo[k]) / levels : 0.0f;
      params[2 * k] = lo[k] <= hi[k] ? lo[k] : 0.0f;
      params[2 * k + 1] = scale;
    }
    std::vector<uint8_t> codes(x.size() * 2);
    for (uint64_t i = 0; i < x.size(); ++i) {
      const uint64_t k = GroupOf(g, i);
      const float scale = params[2 * k + 1];
      float q = scale > 0 ? std::nearbyint((x[i] - params[2 * k]) / scale) : 0.0f;
      q = std::clamp(q, 0.0f, static_cast<float>(levels));
      const uint16_t c = static_cast<uint16_t>(q);
      std::memcpy(&codes[2 * i], &c, 2);
    }
    out->push_back(Stream::Own({ElemType::kU16, g}, std::move(codes)));
    std::vector<uint8_t> pbytes(params.size() * 4);
    // An empty tensor has no groups, and memcpy with a null buffer is undefined even for 0
    // bytes (found by fuzz_roundtrip: tests/fuzz/regressions/roundtrip/quant-*).
    if (!params.empty()) std::memcpy(pbytes.data(), params.data(), pbytes.size());
    out->push_back(Stream::Own({ElemType::kF32, {1, groups, 2}}, std::move(pbytes)));
    return absl::OkStatus();
  }

  absl::Status Decode(const Streams& encoded, absl::Span<const StreamDesc> want,
                      Streams* decoded) const override {
    const Geometry& g = want[0].geom;
    const uint64_t groups = NumGroups(g);
    std::vector<float> params(groups * 2);
    if (!params.empty()) std::memcpy(params.data(), encoded[1].data().data(), params.size() * 4);
    for (float p : params) {
      if (!std::isfinite(p)) return absl::DataLossError("quant: non-finite group parameters");
    }
    const uint32_t levels = (1u << bits()) - 1;
    std::vector<float> x(g.size());
    for (uint64_t i = 0; i < x.size(); ++i) {
      uint16_t c;
      std::memcpy(&c, encoded[0].data().data() + 2 * i, 2);
      if (c > levels) return absl::DataLossError("quant: code out of range");
      const uint64_t k = GroupOf(g, i);
      x[i] = params[2 * k] + static_cast<float>(c) * params[2 * k + 1];
    }
    decoded->push_back(Stream::Own(want[0], StoreAs(want[0].type, x.data(), x.size())));
    return absl::OkStatus();
  }

 private:
  // Each group's range becomes its central `clip` quantile range.
  void ClipRanges(const Geometry& g, const std::vector<float>& x, std::vector<float>* lo,
                  std::vector<float>* hi) const {
    std::vector<std::vector<float>> members(lo->size());
    for (uint64_t i = 0; i < x.size(); ++i) members[GroupOf(g, i)].push_back(x[i]);
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
      .id = 33,
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

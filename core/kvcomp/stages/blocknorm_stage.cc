// blocknorm(block, topk, bits): the seed's partial de-normalisation. Each block keeps its
// largest magnitudes exactly and quantises the rest against the block's remaining max |x|, so
// that a few outliers do not coarsen every other value's step. Scales, indices and outlier
// values are all stored and counted. Layout: docs/FORMAT.md#blocknorm-id-34.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "core/kvcomp/registry.h"
#include "core/kvcomp/stage_ids.h"
#include "core/kvcomp/stages/float_io.h"

namespace kvcomp {
namespace {

class BlockNormStage final : public Stage {
 public:
  using Stage::Stage;
  uint64_t block() const { return static_cast<uint64_t>(values()[0]); }
  double topk() const { return values()[1]; }
  int bits() const { return static_cast<int>(values()[2]); }

  uint64_t KeptIn(uint64_t len) const {
    return std::min<uint64_t>(len, static_cast<uint64_t>(std::ceil(topk() * len)));
  }
  uint64_t TotalKept(uint64_t n) const {
    const uint64_t full = n / block();
    return full * KeptIn(block()) + KeptIn(n % block());
  }

  absl::StatusOr<std::vector<StreamDesc>> Plan(absl::Span<const StreamDesc> in) const override {
    const absl::StatusOr<size_t> f = FindFloatStream("blocknorm", in);
    if (!f.ok()) return f.status();
    const StreamDesc& d = in[*f];
    const uint64_t n = d.geom.size();
    const uint64_t blocks = (n + block() - 1) / block();
    const uint64_t kept = TotalKept(n);
    return AppendOthers({{ElemType::kU16, d.geom},
                         {ElemType::kF32, {1, blocks, 1}},
                         {ElemType::kU16, {1, kept, 1}},
                         {d.type, {1, kept, 1}}},
                        in);
  }

  absl::Status DoEncode(const Streams& in, Streams* out) const override {
    const Stream& src = in[FloatStreamIndex(in)];
    std::vector<float> x;
    if (absl::Status s = LoadFinite("blocknorm", src, &x); !s.ok()) return s;
    const size_t esize = ElemSize(src.desc().type);
    const uint8_t* raw = src.data().data();
    const float q = static_cast<float>((1 << (bits() - 1)) - 1);
    const uint64_t n = x.size();
    std::vector<uint8_t> codes(n * 2), scales, idx, kept_values;
    std::vector<uint32_t> order;
    std::vector<bool> is_kept;
    for (uint64_t start = 0; start < n; start += block()) {
      const uint64_t len = std::min(block(), n - start);
      const uint64_t k = KeptIn(len);
      order.resize(len);
      std::iota(order.begin(), order.end(), 0u);
      auto by_magnitude = [&](uint32_t a, uint32_t b) {
        const float fa = std::fabs(x[start + a]), fb = std::fabs(x[start + b]);
        return fa != fb ? fa > fb : a < b;  // deterministic on ties
      };
      if (k > 0 && k < len)
        std::nth_element(order.begin(), order.begin() + k, order.end(), by_magnitude);
      std::sort(order.begin(), order.begin() + k);
      is_kept.assign(len, false);
      for (uint64_t j = 0; j < k; ++j) {
        is_kept[order[j]] = true;
        const uint16_t i16 = static_cast<uint16_t>(order[j]);
        idx.push_back(static_cast<uint8_t>(i16));
        idx.push_back(static_cast<uint8_t>(i16 >> 8));
        const uint8_t* v = raw + (start + order[j]) * esize;
        kept_values.insert(kept_values.end(), v, v + esize);
      }
      float m = 0;
      for (uint64_t j = 0; j < len; ++j) {
        if (!is_kept[j]) m = std::max(m, std::fabs(x[start + j]));
      }
      uint8_t mb[4];
      std::memcpy(mb, &m, 4);
      scales.insert(scales.end(), mb, mb + 4);
      for (uint64_t j = 0; j < len; ++j) {
        int32_t c = 0;
        if (!is_kept[j] && m > 0) c = static_cast<int32_t>(std::nearbyint(x[start + j] / m * q));
        const uint16_t z = ZigZag16(c);
        std::memcpy(&codes[2 * (start + j)], &z, 2);
      }
    }
    const uint64_t kept = TotalKept(n);
    out->push_back(Stream::Own({ElemType::kU16, src.desc().geom}, std::move(codes)));
    // Counted before the move: the order in which arguments are evaluated is unspecified (GCC
    // moved `scales` first on x86-64, last on ARM64, so the scales stream had 0 rows on x86).
    const uint64_t blocks = scales.size() / 4;
    out->push_back(Stream::Own({ElemType::kF32, {1, blocks, 1}}, std::move(scales)));
    out->push_back(Stream::Own({ElemType::kU16, {1, kept, 1}}, std::move(idx)));
    out->push_back(Stream::Own({src.desc().type, {1, kept, 1}}, std::move(kept_values)));
    PassOthers(in, out);
    return absl::OkStatus();
  }

  absl::Status DoDecode(const Streams& encoded, absl::Span<const StreamDesc> want,
                        absl::Span<uint8_t> /*into*/, Streams* decoded) const override {
    const StreamDesc& d = want[FloatStreamIndex(want)];
    const uint64_t n = d.geom.size();
    const size_t esize = ElemSize(d.type);
    const float q = static_cast<float>((1 << (bits() - 1)) - 1);
    const uint8_t* codes = encoded[0].data().data();
    const uint8_t* scales = encoded[1].data().data();
    std::vector<float> x(n);
    for (uint64_t i = 0; i < n; ++i) {
      uint16_t z;
      std::memcpy(&z, codes + 2 * i, 2);
      float m;
      std::memcpy(&m, scales + 4 * (i / block()), 4);
      const int32_t c = UnZigZag16(z);
      if (!std::isfinite(m) || std::abs(c) > q) return absl::DataLossError("blocknorm: bad code");
      x[i] = static_cast<float>(c) / q * m;
    }
    Stream out = StoreAs(d, {}, x.data());
    uint8_t* bytes = out.mutable_data();
    const uint8_t* idx = encoded[2].data().data();
    const uint8_t* vals = encoded[3].data().data();
    uint64_t kept = 0;
    for (uint64_t start = 0; start < n; start += block()) {
      const uint64_t len = std::min(block(), n - start);
      for (uint64_t j = 0; j < KeptIn(len); ++j, ++kept) {
        const uint64_t at = idx[2 * kept] | (uint64_t{idx[2 * kept + 1]} << 8);
        if (at >= len) return absl::DataLossError("blocknorm: outlier index out of range");
        std::memcpy(bytes + (start + at) * esize, vals + kept * esize, esize);
      }
    }
    decoded->push_back(std::move(out));
    return RestoreOthers("blocknorm", encoded, 4, want, decoded);
  }
};

}  // namespace

void RegisterBlockNormStage(StageRegistry& r) {
  r.Register(StageInfo{
      .id = stage_id::kBlocknorm,
      .name = "blocknorm",
      .summary = "per-block max-abs normalisation, top-k outliers kept exact (lossy)",
      .lossless = false,
      .params = {{.name = "block",
                  .type = ParamType::kInt,
                  .default_value = 128,
                  .min = 1,
                  .max = 65536,
                  .help = "values per block"},
                 {.name = "topk",
                  .type = ParamType::kFloat,
                  .default_value = 0.02,
                  .min = 0,
                  .max = 1,
                  .help = "fraction of each block kept exact"},
                 {.name = "bits",
                  .type = ParamType::kInt,
                  .default_value = 10,
                  .min = 2,
                  .max = 16,
                  .help = "signed code width"}},
      .make = MakeStage<BlockNormStage>,
  });
}

}  // namespace kvcomp

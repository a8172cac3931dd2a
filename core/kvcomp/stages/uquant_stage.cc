// uquant(step): uniform quantisation with one absolute step for the whole tensor. Each value
// becomes round(x / step), zigzag-coded in 16 bits; the decoder returns code x step rounded to
// the tensor's dtype. One global step is what minimises total squared error for a given
// entropy (equal distortion in every channel), so with a context-modelling entropy coder
// behind it this is the error-bounded workhorse that `bounded(...)` tunes.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "kvcomp/registry.h"
#include "kvcomp/stages/float_io.h"
#include "kvcomp/stages/stage_util.h"
#include "kvcomp/status_macros.h"

namespace kvcomp {
namespace {

constexpr int32_t kMaxCode = 32767;

class UniformQuantStage final : public Stage {
 public:
  using Stage::Stage;
  double step() const { return values()[0]; }

  absl::StatusOr<std::vector<StreamDesc>> Plan(absl::Span<const StreamDesc> in) const override {
    const absl::StatusOr<size_t> f = FindFloatStream("uquant", in);
    if (!f.ok()) return f.status();
    return AppendOthers({{ElemType::kU16, in[*f].geom}}, in);
  }

  absl::Status Encode(const Streams& in, Streams* out) const override {
    const Stream& src = in[FloatStreamIndex(in)];
    std::vector<uint8_t> codes(src.data().size() / ElemSize(src.desc().type) * 2);
    const float inv = static_cast<float>(1.0 / step());
    // Branch-free and vectorisable: the loops hold no float reduction (which GCC keeps scalar
    // without -ffast-math), codes out of range are found with an integer OR, and the clamp
    // (only there to keep the conversion defined) sits apart from the zigzag, or GCC turns the
    // clamped cases into branches.
    int64_t worst = 0;  // largest |code| of a chunk with codes out of range
    KV_RETURN_IF_ERROR(
        ForEachFiniteChunk("uquant", src, [&](size_t first, size_t m, const float* x) {
          const float k = inv;
          int32_t q[kFloatChunk];
          for (size_t i = 0; i < m; ++i) {
            q[i] = static_cast<int32_t>(RoundEven(std::min(std::max(x[i] * k, -4e6f), 4e6f)));
          }
          uint8_t* z = codes.data() + 2 * first;
          uint32_t out_of_range = 0;
          for (size_t i = 0; i < m; ++i) {
            out_of_range |= static_cast<uint32_t>(q[i] + kMaxCode) > 2 * kMaxCode;
            stage_util::Store16(z + 2 * i, ZigZag16(q[i]));
          }
          for (size_t i = 0; out_of_range && i < m; ++i) {
            worst = std::max<int64_t>(worst, std::abs(q[i]));
          }
        }));
    if (worst > kMaxCode) {
      return absl::InvalidArgumentError(absl::StrCat("uquant: step ", step(),
                                                     " is too fine for this tensor: codes reach ",
                                                     worst, ", the limit is ", kMaxCode));
    }
    out->push_back(Stream::Own({ElemType::kU16, src.desc().geom}, std::move(codes)));
    PassOthers(in, out);
    return absl::OkStatus();
  }

  absl::Status Decode(const Streams& encoded, absl::Span<const StreamDesc> want,
                      Streams* decoded) const override {
    const auto& codes = encoded[0];
    const size_t n = codes.data().size() / 2;
    const float s = static_cast<float>(step());
    const uint8_t* src = codes.data().data();  // may be unaligned: a view into the frame
    const StreamDesc& d = want[FloatStreamIndex(want)];
    decoded->push_back(
        Stream::Own(d, StoreChunked(d.type, n, [src, s](size_t first, size_t m, float* x) {
                      for (size_t i = 0; i < m; ++i) {
                        uint16_t z;
                        std::memcpy(&z, src + 2 * (first + i), 2);
                        x[i] = static_cast<float>(UnZigZag16(z)) * s;
                      }
                    })));
    return RestoreOthers("uquant", encoded, 1, want, decoded);
  }
};

}  // namespace

void RegisterUniformQuantStage(StageRegistry& r) {
  r.Register(StageInfo{
      .id = 32,
      .name = "uquant",
      .summary = "uniform quantisation to multiples of one absolute step (lossy)",
      .lossless = false,
      .params = {{.name = "step",
                  .type = ParamType::kFloat,
                  .default_value = 0.01,
                  .min = 1e-30,
                  .max = 1e30,
                  .help = "quantisation step; max error is step/2"}},
      .make = MakeStage<UniformQuantStage>,
  });
}

}  // namespace kvcomp

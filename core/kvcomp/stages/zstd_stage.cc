// zstd(level): the generic baseline backend. Compresses each input stream into its own zstd
// frame, so "gear+zstd(19)" is "each plane with zstd -19". Layout: docs/FORMAT.md#zstd-id-1.
#include <zstd.h>

#include "absl/strings/str_cat.h"
#include "core/kvcomp/registry.h"
#include "core/kvcomp/stage_ids.h"

namespace kvcomp {
namespace {

// Contexts are expensive to create; each thread keeps one of each for its whole life.
ZSTD_CCtx* ThreadCCtx() {
  thread_local std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)> ctx(ZSTD_createCCtx(),
                                                                      ZSTD_freeCCtx);
  return ctx.get();
}

ZSTD_DCtx* ThreadDCtx() {
  thread_local std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> ctx(ZSTD_createDCtx(),
                                                                      ZSTD_freeDCtx);
  return ctx.get();
}

class ZstdStage final : public Stage {
 public:
  using Stage::Stage;

  absl::StatusOr<std::vector<StreamDesc>> Plan(absl::Span<const StreamDesc> in) const override {
    std::vector<StreamDesc> out;
    for (const StreamDesc& d : in) {
      if (d.opaque()) {
        return absl::InvalidArgumentError(
            "zstd must take typed streams; it cannot follow another entropy coder");
      }
      out.push_back(StreamDesc{ElemType::kOpaque, d.geom});
    }
    return out;
  }

  absl::Status DoEncode(const Streams& in, Streams* out) const override {
    const int level = static_cast<int>(values()[0]);
    for (const Stream& s : in) {
      std::vector<uint8_t> buf(ZSTD_compressBound(s.data().size()));
      const size_t n = ZSTD_compressCCtx(ThreadCCtx(), buf.data(), buf.size(), s.data().data(),
                                         s.data().size(), level);
      if (ZSTD_isError(n)) {
        return absl::InternalError(absl::StrCat("zstd: ", ZSTD_getErrorName(n)));
      }
      buf.resize(n);
      out->push_back(Stream::Own(StreamDesc{ElemType::kOpaque, s.desc().geom}, std::move(buf)));
    }
    return absl::OkStatus();
  }

  absl::Status DoDecode(const Streams& encoded, absl::Span<const StreamDesc> want,
                        absl::Span<uint8_t> /*into*/, Streams* decoded) const override {
    for (size_t i = 0; i < encoded.size(); ++i) {
      const auto src = encoded[i].data();
      const uint64_t expected = want[i].bytes();
      const unsigned long long declared = ZSTD_getFrameContentSize(src.data(), src.size());
      if (declared == ZSTD_CONTENTSIZE_UNKNOWN || declared == ZSTD_CONTENTSIZE_ERROR) {
        return absl::DataLossError(absl::StrCat("zstd stream ", i,
                                                declared == ZSTD_CONTENTSIZE_ERROR
                                                    ? " is not a zstd frame"
                                                    : " does not declare its size",
                                                " (expected ", expected, " bytes)"));
      }
      if (declared != expected) {
        return absl::DataLossError(
            absl::StrCat("zstd stream ", i, " declares ", declared, " bytes, expected ", expected));
      }
      std::vector<uint8_t> buf(expected);
      const size_t n =
          ZSTD_decompressDCtx(ThreadDCtx(), buf.data(), buf.size(), src.data(), src.size());
      if (ZSTD_isError(n) || n != expected) {
        return absl::DataLossError(absl::StrCat(
            "zstd stream ", i, " is corrupt: ", ZSTD_isError(n) ? ZSTD_getErrorName(n) : "short"));
      }
      decoded->push_back(Stream::Own(want[i], std::move(buf)));
    }
    return absl::OkStatus();
  }
};

}  // namespace

void RegisterZstdStage(StageRegistry& r) {
  r.Register(StageInfo{
      .id = stage_id::kZstd,
      .name = "zstd",
      .summary = "zstd on each stream; level -7 (fastest) to 22 (smallest)",
      .lossless = true,
      .takes_blocks = true,  // bytes are bytes to zstd
      .params = {{.name = "level",
                  .type = ParamType::kInt,
                  .default_value = 3,
                  .min = -7,
                  .max = 22,
                  .help = "compression level"}},
      .make = MakeStage<ZstdStage>,
  });
}

}  // namespace kvcomp

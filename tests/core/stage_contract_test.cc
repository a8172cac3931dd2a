// Stage::Encode is the one place a stage's output is checked against its own plan, for every
// caller (pipelines, presets, tests): a stage that breaks its plan is DATA_LOSS, never a frame.
#include <gtest/gtest.h>

#include "core/kvcomp/stage.h"

namespace kvcomp {
namespace {

// Plans one stream like its input; its encoder emits `extra_streams` more and `short_by` fewer
// bytes than planned.
class PlanBreakingStage final : public Stage {
 public:
  PlanBreakingStage(const StageInfo& info, int extra_streams, size_t short_by)
      : Stage(info, {}), extra_streams_(extra_streams), short_by_(short_by) {}
  absl::StatusOr<std::vector<StreamDesc>> Plan(absl::Span<const StreamDesc> in) const override {
    return std::vector<StreamDesc>(in.begin(), in.end());
  }

 protected:
  absl::Status DoEncode(const Streams& in, Streams* out) const override {
    const auto bytes = in[0].data();
    out->push_back(Stream::Own(in[0].desc(), {bytes.begin(), bytes.end() - short_by_}));
    for (int i = 0; i < extra_streams_; ++i) out->push_back(Stream::Own(in[0].desc(), {}));
    return absl::OkStatus();
  }
  absl::Status DoDecode(const Streams&, absl::Span<const StreamDesc>, absl::Span<uint8_t>,
                        Streams*) const override {
    return absl::UnimplementedError("not needed");
  }

 private:
  int extra_streams_;
  size_t short_by_;
};

TEST(StageContractTest, EncodeChecksTheOutputAgainstThePlan) {
  const StageInfo info{.id = 250, .name = "plan_breaker"};
  const std::vector<uint8_t> words(8, 1);
  Streams in;
  in.push_back(Stream::Borrow(StreamDesc{ElemType::kF16, Geometry{1, 2, 2}}, words));

  Streams kept;
  ASSERT_TRUE(PlanBreakingStage(info, 0, 0).Encode(in, &kept).ok());
  EXPECT_EQ(kept[0].desc().type, ElemType::kF16);

  Streams extra;
  const absl::Status count = PlanBreakingStage(info, 1, 0).Encode(in, &extra);
  EXPECT_EQ(count.code(), absl::StatusCode::kDataLoss) << count;
  EXPECT_NE(count.message().find("2 streams, expected 1"), absl::string_view::npos) << count;

  Streams cut;
  const absl::Status size = PlanBreakingStage(info, 0, 2).Encode(in, &cut);
  EXPECT_EQ(size.code(), absl::StatusCode::kDataLoss) << size;
  EXPECT_NE(size.message().find("6 bytes, expected 8"), absl::string_view::npos) << size;
}

}  // namespace
}  // namespace kvcomp

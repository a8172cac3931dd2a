// The README's "Using the core without the server" example, compiled and run as written:
// tests/core/CMakeLists.txt copies it out of README.md at configure time, its #include lines
// into readme_example_includes.inc and the rest into readme_example_body.inc.
#include "readme_example_includes.inc"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "core/kvcomp/dtype.h"

namespace {

struct ExampleResult {
  absl::StatusOr<kvcomp::TensorView> view;
  absl::StatusOr<kvcomp::CompressedTensor> out;
  absl::StatusOr<kvcomp::Tensor> back;
  absl::StatusOr<kvcomp::TensorMeta> got;
  std::vector<uint8_t> pinned;
};

// The README's code over `bytes`, returning what it made.
ExampleResult RunReadmeExample(const std::vector<uint8_t>& bytes) {
#include "readme_example_body.inc"
  return {std::move(view), std::move(out), std::move(back), std::move(got), std::move(pinned)};
}

TEST(ReadmeExampleTest, CompressesAndDecompressesAsDocumented) {
  // The example's shape, [8, 4096, 128] FP16, filled with smooth per-channel values like a
  // real cache's (a bounded codec needs structure to find a step; random bits are all noise).
  const size_t n = size_t{8} * 4096 * 128;
  std::mt19937 rng(3);
  std::normal_distribution<float> noise(0.0f, 0.05f);
  std::vector<float> values(n);
  for (size_t i = 0; i < n; ++i) {
    const size_t channel = i % 128, token = i / 128 % 4096;
    values[i] = 0.02f * static_cast<float>(channel % 7) * std::sin(0.01f * token) + noise(rng);
  }
  std::vector<uint16_t> half(n);
  kvcomp::FloatToHalf(values.data(), half.data(), n);
  std::vector<uint8_t> bytes(2 * n);
  std::memcpy(bytes.data(), half.data(), bytes.size());

  const ExampleResult r = RunReadmeExample(bytes);
  ASSERT_TRUE(r.view.ok()) << r.view.status();
  ASSERT_TRUE(r.out.ok()) << r.out.status();
  ASSERT_TRUE(r.back.ok()) << r.back.status();
  EXPECT_EQ(r.back->meta.ShapeString(), "[8,4096,128]");
  EXPECT_EQ(r.back->meta.dtype, kvcomp::DType::kFP16);
  EXPECT_EQ(r.back->meta.kind, kvcomp::Kind::kKey);
  EXPECT_EQ(r.back->bytes.size(), bytes.size());
  ASSERT_TRUE(r.got.ok()) << r.got.status();  // DecompressInto: the same tensor, in place
  EXPECT_EQ(r.got->ShapeString(), "[8,4096,128]");
  EXPECT_EQ(r.pinned, r.back->bytes);
  EXPECT_EQ(r.out->report.compressed_bytes, r.out->frame.size());
  EXPECT_LT(r.out->frame.size(), bytes.size());
  if (!r.out->report.lossless) {
    ASSERT_TRUE(r.out->report.error.has_value());
    EXPECT_GE(r.out->report.error->cosine, 0.9999);
  } else {
    EXPECT_EQ(r.back->bytes, bytes);
  }
}

}  // namespace

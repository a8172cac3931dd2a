// DecompressInto: decoding straight into the caller's memory gives what Decompress gives,
// whatever the buffer held before, and checks the buffer before writing to it.
#include <gtest/gtest.h>

#include "core/kvcomp/codec.h"
#include "core/kvcomp/synth/llama_synth.h"

namespace kvcomp {
namespace {

Tensor WithZeroTail() {
  synth::LlamaShape shape;
  shape.kv_heads = 2, shape.head_dim = 16, shape.tokens = 200;
  Tensor t = synth::LlamaKv(shape, 1, Kind::kValue);
  // The entropy coders skip a trailing run of zeros; the decoder must write them all the same.
  std::fill(t.bytes.begin() + static_cast<std::ptrdiff_t>(t.bytes.size() * 2 / 3), t.bytes.end(),
            uint8_t{0});
  return t;
}

TEST(DecodeIntoTest, MatchesDecompressOverAStaleBuffer) {
  const Tensor t = WithZeroTail();
  for (const char* spec :
       {"huff", "qhuff", "rans", "cm", "zstd(3)", "dedupe+huff", "lossless", "planes+qhuff",
        "uquant(0.01)+qhuff", "quant(bits=8,group=channel)+zstd(1)", "bounded(cos=0.999)",
        "blocknorm+zstd(1)", "protect(sink=2,recent=4)+uquant(0.01)+qhuff"}) {
    SCOPED_TRACE(spec);
    auto codec = MakeCodec(spec);
    ASSERT_TRUE(codec.ok()) << codec.status();
    auto out = (*codec)->Compress(t.view());
    ASSERT_TRUE(out.ok()) << out.status();
    auto expected = Decompress(out->frame);
    ASSERT_TRUE(expected.ok()) << expected.status();
    std::vector<uint8_t> buffer(t.bytes.size(), 0xab);  // what a reused buffer might hold
    int asked = 0;
    auto meta = DecompressInto(out->frame, [&](const TensorMeta& m) {
      ++asked;
      EXPECT_EQ(m.NumBytes(), buffer.size());
      return absl::MakeSpan(buffer);
    });
    ASSERT_TRUE(meta.ok()) << meta.status();
    EXPECT_EQ(asked, 1);
    EXPECT_EQ(meta->shape, t.meta.shape);
    EXPECT_TRUE(buffer == expected->bytes);
  }
}

TEST(DecodeIntoTest, RefusesABufferOfTheWrongSize) {
  const Tensor t = WithZeroTail();
  auto out = MakeCodec("huff").value()->Compress(t.view());
  ASSERT_TRUE(out.ok());
  std::vector<uint8_t> small(t.bytes.size() - 1);
  auto meta = DecompressInto(out->frame, [&](const TensorMeta&) { return absl::MakeSpan(small); });
  ASSERT_FALSE(meta.ok());
  EXPECT_EQ(meta.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(meta.status().message().find(std::to_string(t.bytes.size())), std::string::npos)
      << meta.status();
}

TEST(DecodeIntoTest, AsksForNoBufferWhenTheFrameIsBad) {
  const Tensor t = WithZeroTail();
  auto out = MakeCodec("huff").value()->Compress(t.view());
  ASSERT_TRUE(out.ok());
  std::vector<uint8_t> frame = out->frame;
  frame[frame.size() / 2] ^= 1;  // the checksum catches it before any stage runs
  bool asked = false;
  auto meta = DecompressInto(frame, [&](const TensorMeta&) {
    asked = true;
    return absl::Span<uint8_t>();
  });
  EXPECT_EQ(meta.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_FALSE(asked);
  // Over the decode limit: refused before a buffer is asked for.
  meta = DecompressInto(
      out->frame,
      [&](const TensorMeta&) {
        asked = true;
        return absl::Span<uint8_t>();
      },
      DecodeLimits{t.bytes.size() - 1});
  EXPECT_EQ(meta.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_FALSE(asked);
}

}  // namespace
}  // namespace kvcomp

// Shared checks for the lossless stages: bit-exact round trips over every kind of input the
// issue names, and decoders that refuse corrupt input without crashing.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/kvcomp/codec.h"
#include "core/kvcomp/dtype.h"
#include "core/kvcomp/pipeline.h"
#include "core/kvcomp/registry.h"
#include "tests/core/test_data.h"

namespace kvcomp::testing {

// Tensors whose every element is one of the IEEE special patterns (NaN payloads, +-0,
// subnormals, infinities, extremes), mixed with ordinary values and repeated rows.
inline Tensor SpecialsTensor(DType dtype, std::vector<int64_t> shape, uint32_t seed,
                             Layout layout = Layout::kHeadMajor) {
  Tensor t = RandomBitsTensor(dtype, shape, seed, layout);
  std::mt19937 rng(seed * 7 + 1);
  const size_t es = DTypeSize(dtype);
  const size_t n = t.bytes.size() / es;
  std::vector<uint32_t> specials;
  if (es == 2) {
    const bool bf = dtype == DType::kBF16;
    specials = {0x0000,
                0x8000,
                0x0001,
                0x8001,
                0x03ff,
                0x83ff,  // zeros, subnormals (FP16)
                bf ? 0x7f80u : 0x7c00u,
                bf ? 0xff80u : 0xfc00u,  // infinities
                bf ? 0x7fc0u : 0x7e00u,
                bf ? 0x7f81u : 0x7c01u,  // quiet / signalling NaN
                bf ? 0xffffu : 0xffffu,
                0x7fff,
                0x3c00,
                0xbc00,
                0x0400,
                0x7bff};
  } else {
    specials = {0x00000000, 0x80000000, 0x00000001, 0x807fffff, 0x7f800000, 0xff800000,
                0x7fc00000, 0x7f800001, 0xffffffff, 0x7fffffff, 0x3f800000, 0x00800000};
  }
  for (size_t i = 0; i < n; ++i) {
    const uint32_t r = rng();
    uint32_t v;
    if (r % 3 == 0) {
      v = specials[(r >> 8) % specials.size()];
    } else if (r % 3 == 1) {
      // Plausible KV value: small float.
      const float f = static_cast<float>(static_cast<int32_t>(r >> 4) % 2000) / 997.0f;
      v = dtype == DType::kFP32   ? 0
          : dtype == DType::kFP16 ? FloatToHalfBits(f)
                                  : FloatToBf16Bits(f);
      if (dtype == DType::kFP32) std::memcpy(&v, &f, 4);
    } else {
      continue;  // keep the random bits
    }
    std::memcpy(t.bytes.data() + i * es, &v, es);
  }
  // Repeat some rows of the first plane (exercise dedupe-style paths).
  const Geometry g = GeometryOf(t.meta);
  const size_t row = g.cols * es;
  for (uint64_t r = 1; row > 0 && r < g.rows; r += 3) {
    if (rng() % 2) std::memcpy(t.bytes.data() + r * row, t.bytes.data() + (r / 2) * row, row);
  }
  return t;
}

inline Tensor ConstantTensor(DType dtype, std::vector<int64_t> shape, uint8_t byte) {
  Tensor t = RandomBitsTensor(dtype, shape, 1);
  std::memset(t.bytes.data(), byte, t.bytes.size());
  return t;
}

inline void ExpectRoundTrip(const std::string& spec, const Tensor& t, const std::string& what) {
  auto codec = MakeCodec(spec);
  ASSERT_TRUE(codec.ok()) << spec << ": " << codec.status();
  auto out = (*codec)->Compress(t.view());
  ASSERT_TRUE(out.ok()) << spec << " on " << what << ": " << out.status();
  EXPECT_TRUE(out->report.lossless) << spec;
  auto back = Decompress(out->frame);
  ASSERT_TRUE(back.ok()) << spec << " on " << what << ": " << back.status();
  EXPECT_EQ(back->meta.shape, t.meta.shape) << spec << " on " << what;
  EXPECT_EQ(back->meta.layout, t.meta.layout) << spec << " on " << what;
  EXPECT_TRUE(back->bytes == t.bytes) << spec << " is not bit-exact on " << what;
}

// Every dtype x layout x awkward shape x content.
inline void ExpectLosslessEverywhere(const std::string& spec) {
  const std::vector<std::vector<int64_t>> shapes = {{0},         {4, 0, 8},  {1, 1, 1},
                                                    {3, 1, 7},   {5},        {2, 3, 5, 7},
                                                    {1, 513, 3}, {4, 37, 8}, {2, 300, 64}};
  uint32_t seed = 1;
  for (DType dtype : {DType::kFP16, DType::kBF16, DType::kFP32}) {
    for (Layout layout : {Layout::kHeadMajor, Layout::kTokenMajor}) {
      for (const auto& shape : shapes) {
        if (layout == Layout::kTokenMajor && shape.size() < 2) continue;
        const std::string name = std::string(DTypeName(dtype)) + " " +
                                 std::string(LayoutName(layout)) + " " +
                                 std::to_string(shape.size()) + "-d #" + std::to_string(seed);
        ExpectRoundTrip(spec, RandomBitsTensor(dtype, shape, ++seed, layout), "random " + name);
        ExpectRoundTrip(spec, SpecialsTensor(dtype, shape, ++seed, layout), "specials " + name);
      }
      ExpectRoundTrip(spec, ConstantTensor(dtype, {2, 40, 8}, 0), "zeros");
      ExpectRoundTrip(spec, ConstantTensor(dtype, {2, 40, 8}, 0xff), "0xff (NaN) fill");
    }
  }
}

inline void ExpectRealKvRoundTrips(const std::string& spec, double min_kv_ratio) {
  if (!HaveSharedKv()) GTEST_SKIP() << "../shared/kv is absent";
  auto codec = MakeCodec(spec);
  ASSERT_TRUE(codec.ok()) << codec.status();
  uint64_t raw = 0, comp = 0;
  for (const auto& t : LoadSharedKv(DType::kFP16)) {
    auto out = (*codec)->Compress(t.tensor.view());
    ASSERT_TRUE(out.ok()) << t.name << ": " << out.status();
    auto back = Decompress(out->frame);
    ASSERT_TRUE(back.ok()) << t.name << ": " << back.status();
    EXPECT_TRUE(back->bytes == t.tensor.bytes) << spec << " not exact on " << t.name;
    raw += t.tensor.bytes.size();
    comp += out->frame.size();
  }
  EXPECT_GT(static_cast<double>(raw) / comp, min_kv_ratio) << spec;
}

// Encodes with the stages of `spec`, then feeds the last stage's decoder truncated, extended
// and bit-flipped versions of each stream: it must return an error or a correctly sized
// result, never crash or read out of bounds (run under ASan to see the latter).
inline void ExpectCorruptionIsSafe(const std::string& spec, const Tensor& t,
                                   bool expect_rejections = true, int trials = 300) {
  auto pipeline = Pipeline::FromSpec(spec);
  ASSERT_TRUE(pipeline.ok()) << pipeline.status();
  const auto& stages = pipeline->stages();
  // Run every stage, remembering the descs feeding the last one.
  std::vector<StreamDesc> descs = {StreamDesc{ElemTypeOf(t.meta.dtype), GeometryOf(t.meta)}};
  Streams streams;
  streams.push_back(Stream::Borrow(descs[0], t.bytes));
  for (size_t i = 0; i < stages.size(); ++i) {
    auto next = stages[i]->Plan(descs);
    ASSERT_TRUE(next.ok()) << next.status();
    Streams out;
    ASSERT_TRUE(stages[i]->Encode(streams, &out).ok());
    if (i + 1 < stages.size()) {
      descs = *next;
      streams = std::move(out);
    } else {
      streams = std::move(out);
    }
  }
  const Stage& last = *stages.back();
  std::mt19937 rng(99);
  int rejected = 0;
  for (int trial = 0; trial < trials; ++trial) {
    std::vector<std::vector<uint8_t>> bufs;
    for (const Stream& s : streams) bufs.emplace_back(s.data().begin(), s.data().end());
    const size_t k = rng() % bufs.size();
    auto& b = bufs[k];
    switch (trial % 4) {
      case 0:
        if (!b.empty()) b.resize(rng() % b.size());
        break;
      case 1:
        b.push_back(static_cast<uint8_t>(rng()));
        break;
      default:
        for (int f = 0; f < 1 + trial % 3 && !b.empty(); ++f)
          b[rng() % b.size()] ^= 1 << (rng() % 8);
        break;
    }
    Streams enc;
    for (size_t i = 0; i < bufs.size(); ++i) enc.push_back(Stream::Own(streams[i].desc(), bufs[i]));
    // Typed streams have derived sizes: the pipeline refuses wrong sizes before any stage.
    if (!streams[k].desc().opaque() && bufs[k].size() != streams[k].data().size()) continue;
    Streams dec;
    const absl::Status st = last.Decode(enc, descs, &dec);
    if (!st.ok()) {
      ++rejected;
      EXPECT_TRUE(st.code() == absl::StatusCode::kDataLoss ||
                  st.code() == absl::StatusCode::kInvalidArgument)
          << st;
      continue;
    }
    ASSERT_EQ(dec.size(), descs.size());
    for (size_t i = 0; i < dec.size(); ++i) {
      if (!descs[i].opaque()) {
        EXPECT_EQ(dec[i].data().size(), descs[i].bytes());
      }
    }
  }
  // Truncation alone must be caught almost always (by entropy decoders; transforms only
  // see typed streams of the right size and accept any bits).
  if (expect_rejections) {
    EXPECT_GT(rejected, trials / 8) << spec;
  }
}

}  // namespace kvcomp::testing

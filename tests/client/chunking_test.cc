// How the client cuts a cache into requests (chunks under the stream threshold, token blocks)
// and puts the answers back together, with no server: the requests are answered here by the
// codec core, as kvcomp-server answers them (client/chunking.h).
#include "client/chunking.h"

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstring>

#include "core/kvcomp/codec.h"
#include "core/kvcomp/frame.h"
#include "core/kvcomp/internal/status_macros.h"
#include "proto/kvcomp/v1/convert.h"

namespace kvcomp::client {
namespace {

// A [heads, tokens, dim] FP16 tensor (head-major; token-major is [tokens, heads, dim]) whose
// every byte says where it is.
io::NamedTensor MakeTensor(std::string name, int32_t layer, Kind kind, int64_t heads,
                           int64_t tokens, int64_t dim, Layout layout = Layout::kHeadMajor) {
  io::NamedTensor t;
  t.name = std::move(name);
  TensorMeta& m = t.tensor.meta;
  m.dtype = DType::kFP16;
  m.layer = layer;
  m.kind = kind;
  m.layout = layout;
  m.shape = layout == Layout::kHeadMajor ? std::vector<int64_t>{heads, tokens, dim}
                                         : std::vector<int64_t>{tokens, heads, dim};
  t.tensor.bytes.resize(m.NumBytes());
  for (size_t i = 0; i < t.tensor.bytes.size(); ++i) {
    t.tensor.bytes[i] = static_cast<uint8_t>((i * 7 + layer * 13 + static_cast<int>(kind)) % 251);
  }
  return t;
}

// kvcomp-server's Compress, on the codec core alone: a frame and a report per request tensor,
// token_offset and total_tokens echoed.
absl::StatusOr<v1::CompressResponse> ServeCompress(const v1::CompressRequest& request) {
  KV_ASSIGN_OR_RETURN(std::unique_ptr<Codec> codec, MakeCodec(request.codec()));
  v1::CompressResponse response;
  for (const v1::Tensor& t : request.tensors()) {
    KV_ASSIGN_OR_RETURN(TensorView view, proto::ViewFromProto(t));
    KV_ASSIGN_OR_RETURN(kvcomp::CompressedTensor out, codec->Compress(view));
    v1::CompressedTensor* entry = response.add_tensors();
    entry->set_name(t.name());
    entry->set_frame(out.frame.data(), out.frame.size());
    proto::ReportToProto(out.report, t.name(), entry->mutable_report());
    entry->set_token_offset(t.token_offset());
    entry->set_total_tokens(t.total_tokens());
    v1::Totals* totals = response.mutable_totals();
    totals->set_raw_bytes(totals->raw_bytes() + out.report.raw_bytes);
    totals->set_compressed_bytes(totals->compressed_bytes() + out.report.compressed_bytes);
  }
  return response;
}

// kvcomp-server's Decompress: each frame decoded into a tensor of the reply.
absl::StatusOr<v1::DecompressResponse> ServeDecompress(const v1::DecompressRequest& request) {
  v1::DecompressResponse response;
  for (const v1::CompressedTensor& in : request.tensors()) {
    KV_ASSIGN_OR_RETURN(
        Tensor t, Decompress(absl::MakeConstSpan(
                      reinterpret_cast<const uint8_t*>(in.frame().data()), in.frame().size())));
    proto::TensorToProto(t, in.name(), response.add_tensors());
  }
  return response;
}

ClientOptions Limits(int64_t threshold, int max_message = 1 << 20) {
  ClientOptions o;
  o.stream_threshold_bytes = threshold;
  o.max_message_bytes = max_message;
  return o;
}

std::vector<std::vector<uint64_t>> Costs(const std::vector<std::vector<Piece>>& chunks) {
  std::vector<std::vector<uint64_t>> out;
  for (const auto& chunk : chunks) {
    out.emplace_back();
    for (const Piece& p : chunk) out.back().push_back(p.cost);
  }
  return out;
}

TEST(ChunkingTest, TheThresholdDerivesFromTheMessageLimit) {
  ClientOptions o;  // 512 MiB messages: the default chunk (32 MiB), less 64 KiB of headers
  EXPECT_EQ(EffectiveThreshold(o), kDefaultChunkBytes - (64 << 10));
  EXPECT_EQ(kDefaultChunkBytes, int64_t{32} << 20);
  EXPECT_EQ(HardLimit(o), (uint64_t{512} << 20) - (64 << 10));
  o.max_message_bytes = 160000;  // 1/16 kept for headers
  EXPECT_EQ(EffectiveThreshold(o), 150000);
  EXPECT_EQ(HardLimit(o), 150000u);
  o.stream_threshold_bytes = 5000;
  EXPECT_EQ(EffectiveThreshold(o), 5000);
}

TEST(ChunkingTest, PackKeepsEachChunkWithinItsBudget) {
  std::vector<Piece> pieces;
  for (uint64_t cost : {40, 50, 20, 200, 10, 70}) pieces.push_back({.item = 0, .cost = cost});
  EXPECT_EQ(Costs(Pack(pieces, 100)),
            (std::vector<std::vector<uint64_t>>{{40, 50}, {20}, {200}, {10, 70}}));
  EXPECT_TRUE(Pack({}, 100).empty());
}

TEST(ChunkingTest, SmallTensorsGoWholeAndBigOnesInTokenBlocks) {
  // 128 bytes a token: (4096 - 512) / 128 = 28 tokens a block, the last one 100 - 84 = 16.
  const io::KvCache cache = {MakeTensor("layer0_k", 0, Kind::kKey, 2, 4, 8),
                             MakeTensor("layer0_v", 0, Kind::kValue, 4, 100, 16)};
  absl::StatusOr<std::vector<Piece>> pieces = CutTensors(cache, 4096, 1 << 20);
  ASSERT_TRUE(pieces.ok()) << pieces.status();
  ASSERT_EQ(pieces->size(), 5u);
  EXPECT_EQ((*pieces)[0].item, 0u);
  EXPECT_EQ((*pieces)[0].count, -1);
  EXPECT_EQ((*pieces)[0].cost, 128 + kPerTensorOverhead);
  const int64_t offsets[] = {0, 28, 56, 84}, counts[] = {28, 28, 28, 16};
  for (int b = 0; b < 4; ++b) {
    const Piece& p = (*pieces)[1 + b];
    EXPECT_EQ(p.item, 1u);
    EXPECT_EQ(p.offset, offsets[b]);
    EXPECT_EQ(p.count, counts[b]);
    EXPECT_EQ(p.cost, static_cast<uint64_t>(counts[b]) * 128 + kPerTensorOverhead);
    EXPECT_LE(p.cost, 4096u);
  }
}

TEST(ChunkingTest, ATokenAboveTheThresholdGoesAloneOrIsRefused) {
  const io::KvCache cache = {MakeTensor("layer3_k", 3, Kind::kKey, 4, 10, 16)};  // 128 B a token
  absl::StatusOr<std::vector<Piece>> pieces = CutTensors(cache, 600, 1000);
  ASSERT_TRUE(pieces.ok()) << pieces.status();
  EXPECT_EQ(pieces->size(), 10u);
  for (const Piece& p : *pieces) EXPECT_EQ(p.count, 1);
  pieces = CutTensors(cache, 600, 600);
  EXPECT_EQ(pieces.status().code(), absl::StatusCode::kResourceExhausted) << pieces.status();
  EXPECT_NE(pieces.status().message().find("one token of tensor 'layer3_k' is 128 bytes"),
            std::string::npos)
      << pieces.status();
}

TEST(ChunkingTest, AMalformedTensorGoesWholeForTheServerToName) {
  io::KvCache cache = {MakeTensor("layer0_k", 0, Kind::kKey, 4, 100, 16)};
  cache[0].tensor.bytes.pop_back();
  absl::StatusOr<std::vector<Piece>> pieces = CutTensors(cache, 4096, 1 << 20);
  ASSERT_TRUE(pieces.ok()) << pieces.status();
  ASSERT_EQ(pieces->size(), 1u);
  EXPECT_EQ((*pieces)[0].count, -1);
}

TEST(ChunkingTest, ATokenBlockCarriesItsTokensOfEveryHead) {
  const io::NamedTensor t = MakeTensor("layer1_k", 1, Kind::kKey, 3, 10, 4);
  v1::Tensor block;
  TokenBlockToProto(t, 6, 3, &block);
  EXPECT_EQ(block.token_offset(), 6u);
  EXPECT_EQ(block.total_tokens(), 10u);
  EXPECT_EQ(std::vector<int64_t>(block.shape().begin(), block.shape().end()),
            (std::vector<int64_t>{3, 3, 4}));
  const size_t row = 4 * 2;  // one token of one head
  ASSERT_EQ(block.raw_contents().size(), 3 * 3 * row);
  for (size_t h = 0; h < 3; ++h) {
    EXPECT_EQ(std::memcmp(block.raw_contents().data() + h * 3 * row,
                          t.tensor.bytes.data() + (h * 10 + 6) * row, 3 * row),
              0)
        << "head " << h;
  }
}

// Compress then Decompress through the plans, each chunk answered by the core: every chunk
// fits the threshold, blocks come back as one tensor, and every byte is where it was.
TEST(ChunkingTest, PlansRoundTripACacheInChunks) {
  const io::KvCache cache = {
      MakeTensor("layer0_k", 0, Kind::kKey, 4, 100, 16),
      MakeTensor("layer0_v", 0, Kind::kValue, 4, 70, 16, Layout::kTokenMajor),
      MakeTensor("extra", -1, Kind::kUnspecified, 1, 3, 8),
  };
  const ClientOptions options = Limits(4096);
  absl::StatusOr<CompressPlan> compress = CompressPlan::Make(cache, options);
  ASSERT_TRUE(compress.ok()) << compress.status();
  EXPECT_EQ(compress->chunks(), 7u);  // 4 blocks of K, 3 of V (the last with "extra")
  compress->Reset();
  for (size_t i = 0; i < compress->chunks(); ++i) {
    const v1::CompressRequest request = compress->Request(i, "zstd(1)", cache);
    EXPECT_LE(request.ByteSizeLong(), 4096u) << "chunk " << i;
    absl::StatusOr<v1::CompressResponse> response = ServeCompress(request);
    ASSERT_TRUE(response.ok()) << response.status();
    ASSERT_TRUE(compress->Take(i, *response).ok()) << "chunk " << i;
  }
  const CompressResult compressed = compress->Result();
  ASSERT_EQ(compressed.tensors.size(), 3u);
  const size_t frames[] = {4, 3, 1};
  for (size_t i = 0; i < 3; ++i) {
    const CompressedTensor& t = compressed.tensors[i];
    EXPECT_EQ(t.name, cache[i].name);
    absl::StatusOr<std::vector<absl::Span<const uint8_t>>> split = SplitFrames(t.frame);
    ASSERT_TRUE(split.ok()) << split.status();
    EXPECT_EQ(split->size(), frames[i]) << t.name;
    EXPECT_EQ(t.report.shape, cache[i].tensor.meta.shape);
    EXPECT_EQ(t.report.raw_bytes, cache[i].tensor.bytes.size());
    EXPECT_EQ(t.report.codec, "zstd(1)");  // the blocks' one pipeline, once
    EXPECT_TRUE(t.report.lossless);
  }
  EXPECT_EQ(compressed.totals.raw_bytes, 12800u + 8960u + 48u);

  std::vector<FrameRef> refs;
  for (const CompressedTensor& t : compressed.tensors) refs.push_back({t.name, t.frame});
  absl::StatusOr<DecompressPlan> decompress = DecompressPlan::Make(refs, options);
  ASSERT_TRUE(decompress.ok()) << decompress.status();
  EXPECT_GT(decompress->chunks(), 1u);
  decompress->Reset();
  for (size_t i = 0; i < decompress->chunks(); ++i) {
    absl::StatusOr<v1::DecompressResponse> response = ServeDecompress(decompress->Request(i));
    ASSERT_TRUE(response.ok()) << response.status();
    absl::Status taken = decompress->Take(i, *response);
    ASSERT_TRUE(taken.ok()) << taken;
  }
  const io::KvCache back = decompress->Result();
  ASSERT_EQ(back.size(), cache.size());
  for (size_t i = 0; i < cache.size(); ++i) {
    EXPECT_EQ(back[i].tensor.meta.shape, cache[i].tensor.meta.shape) << cache[i].name;
    EXPECT_EQ(back[i].tensor.meta.layout, cache[i].tensor.meta.layout) << cache[i].name;
    EXPECT_TRUE(back[i].tensor.bytes == cache[i].tensor.bytes) << cache[i].name;
  }
}

TEST(ChunkingTest, OneChunkWhenEverythingFits) {
  const io::KvCache cache = {MakeTensor("layer0_k", 0, Kind::kKey, 2, 4, 8)};
  absl::StatusOr<CompressPlan> plan = CompressPlan::Make(cache, Limits(0));
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->chunks(), 1u);
  EXPECT_EQ(plan->Request(0, "zstd(1)", cache).tensors(0).total_tokens(), 0u);  // whole
  absl::StatusOr<CompressPlan> empty = CompressPlan::Make({}, Limits(0));
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->chunks(), 1u);  // an empty request still makes one call
}

// A lossy block's report: sizes, pipeline, and mae, rel_mae, max_abs, rmse, rel_rmse, cosine
// and snr_db in that order.
TensorReport LossyBlock(uint64_t raw, uint64_t compressed, std::string codec,
                        std::array<double, 7> e) {
  TensorReport r;
  r.raw_bytes = raw;
  r.compressed_bytes = compressed;
  r.codec = std::move(codec);
  r.lossless = false;
  r.error = ErrorStats{.mae = e[0],
                       .rel_mae = e[1],
                       .max_abs = e[2],
                       .rmse = e[3],
                       .rel_rmse = e[4],
                       .cosine = e[5],
                       .snr_db = e[6]};
  r.compress_seconds = 0.5;
  return r;
}

TEST(ChunkingTest, BlockReportsMergeIntoTheTensorsReport) {
  const TensorReport a = LossyBlock(100, 50, "uquant(bits=4)+rans", {1, 0.1, 3, 1, 0.2, 0.999, 40});
  const TensorReport b =
      LossyBlock(300, 100, "uquant(bits=5)+rans", {2, 0.05, 2, 2, 0.3, 0.99, 45});
  TensorMeta whole;
  whole.shape = {4, 200, 8};
  const TensorReport merged = MergeBlockReports({a, b, a}, whole);
  EXPECT_EQ(merged.shape, whole.shape);
  EXPECT_EQ(merged.raw_bytes, 500u);
  EXPECT_EQ(merged.compressed_bytes, 200u);
  EXPECT_DOUBLE_EQ(merged.ratio, 2.5);
  EXPECT_DOUBLE_EQ(merged.compress_seconds, 1.5);
  EXPECT_EQ(merged.codec, "uquant(bits=4)+rans, uquant(bits=5)+rans");
  EXPECT_FALSE(merged.lossless);
  ASSERT_TRUE(merged.error.has_value());
  // mae and rmse exact over the tensor (weighted by bytes), max_abs the largest, the relative
  // metrics, cosine and SNR those of the worst block.
  EXPECT_DOUBLE_EQ(merged.error->mae, 0.2 * 1 + 0.6 * 2 + 0.2 * 1);
  EXPECT_DOUBLE_EQ(merged.error->rmse, std::sqrt(0.2 * 1 + 0.6 * 4 + 0.2 * 1));
  EXPECT_DOUBLE_EQ(merged.error->max_abs, 3);
  EXPECT_DOUBLE_EQ(merged.error->rel_mae, 0.1);
  EXPECT_DOUBLE_EQ(merged.error->rel_rmse, 0.3);
  EXPECT_DOUBLE_EQ(merged.error->cosine, 0.99);
  EXPECT_DOUBLE_EQ(merged.error->snr_db, 40);
}

TEST(ChunkingTest, AnswersUnlikeTheRequestAreRefused) {
  const io::KvCache cache = {MakeTensor("layer0_k", 0, Kind::kKey, 4, 100, 16)};
  absl::StatusOr<CompressPlan> plan = CompressPlan::Make(cache, Limits(4096));
  ASSERT_TRUE(plan.ok()) << plan.status();
  plan->Reset();
  absl::StatusOr<v1::CompressResponse> good = ServeCompress(plan->Request(1, "zstd(1)", cache));
  ASSERT_TRUE(good.ok()) << good.status();

  v1::CompressResponse none;
  EXPECT_EQ(plan->Take(1, none).code(), absl::StatusCode::kDataLoss);
  v1::CompressResponse misplaced = *good;
  misplaced.mutable_tensors(0)->set_token_offset(0);
  absl::Status s = plan->Take(1, misplaced);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_NE(s.message().find("at token 0, not 28"), std::string::npos) << s;
  v1::CompressResponse unknown_kind = *good;
  unknown_kind.mutable_tensors(0)->mutable_report()->set_kind(static_cast<v1::TensorKind>(9));
  s = plan->Take(1, unknown_kind);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_NE(s.message().find("unknown tensor kind 9"), std::string::npos) << s;
}

TEST(ChunkingTest, ADecodedTensorWithAnUnknownDatatypeIsRefused) {
  const io::NamedTensor t = MakeTensor("layer0_v", 0, Kind::kValue, 2, 4, 8);
  absl::StatusOr<std::unique_ptr<Codec>> codec = MakeCodec("zstd(1)");
  ASSERT_TRUE(codec.ok());
  absl::StatusOr<kvcomp::CompressedTensor> frame = (*codec)->Compress(t.tensor.view());
  ASSERT_TRUE(frame.ok()) << frame.status();
  const FrameRef refs[] = {{"layer0_v", frame->frame}};
  absl::StatusOr<DecompressPlan> plan = DecompressPlan::Make(refs, Limits(0));
  ASSERT_TRUE(plan.ok()) << plan.status();
  absl::StatusOr<v1::DecompressResponse> response = ServeDecompress(plan->Request(0));
  ASSERT_TRUE(response.ok()) << response.status();
  response->mutable_tensors(0)->set_datatype("FP8");  // once read as garbage FP16
  plan->Reset();
  absl::Status s = plan->Take(0, *response);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_NE(s.message().find("unknown datatype 'FP8'"), std::string::npos) << s;
}

TEST(ChunkingTest, AFrameThatDecodesAboveTheMessageLimitIsRefusedBeforeSending) {
  const io::NamedTensor t = MakeTensor("layer0_v", 0, Kind::kValue, 4, 128, 16);  // 16 KiB
  absl::StatusOr<std::unique_ptr<Codec>> codec = MakeCodec("zstd(1)");
  ASSERT_TRUE(codec.ok());
  absl::StatusOr<kvcomp::CompressedTensor> frame = (*codec)->Compress(t.tensor.view());
  ASSERT_TRUE(frame.ok()) << frame.status();
  const FrameRef refs[] = {{"layer0_v", frame->frame}};
  absl::StatusOr<DecompressPlan> plan = DecompressPlan::Make(refs, Limits(0, 8192));
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kResourceExhausted) << plan.status();
}

TEST(ChunkingTest, TokenBlocksThatDisagreeAreNotJoined) {
  std::vector<io::NamedTensor> blocks = {MakeTensor("layer0_k", 0, Kind::kKey, 4, 10, 16),
                                         MakeTensor("layer0_k", 0, Kind::kKey, 4, 10, 8)};
  absl::StatusOr<io::NamedTensor> joined = ConcatTokenBlocks(std::move(blocks));
  EXPECT_EQ(joined.status().code(), absl::StatusCode::kInvalidArgument) << joined.status();
}

}  // namespace
}  // namespace kvcomp::client

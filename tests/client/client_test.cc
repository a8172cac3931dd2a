// The client library against the real kvcomp-server binary on a loopback port.
#include "kvcomp_client.h"

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "io/dump.h"
#include "test_util.h"
#include "tests/support/server_process.h"

namespace kvcomp::client {
namespace {

using kvcomp::testing::MakeCache;
using kvcomp::testing::ServerProcess;
using kvcomp::testing::SharedKvDir;

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = ServerProcess::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    auto client = Client::Connect(server_->address());
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = std::move(*client);
  }
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<Client> client_;
};

void ExpectSameCache(const io::KvCache& got, const io::KvCache& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].tensor.meta.dtype, want[i].tensor.meta.dtype) << i;
    EXPECT_EQ(got[i].tensor.meta.shape, want[i].tensor.meta.shape) << i;
    EXPECT_EQ(got[i].tensor.meta.layer, want[i].tensor.meta.layer) << i;
    EXPECT_EQ(got[i].tensor.meta.kind, want[i].tensor.meta.kind) << i;
    EXPECT_EQ(got[i].tensor.meta.layout, want[i].tensor.meta.layout) << i;
    EXPECT_TRUE(got[i].tensor.bytes == want[i].tensor.bytes) << "tensor " << i << " differs";
  }
}

TEST_F(ClientTest, EverySharedRunRoundTripsBitExact) {
  const std::string shared = SharedKvDir();
  if (shared.empty()) GTEST_SKIP() << "../shared/kv is absent";
  for (const char* run :
       {"story_prose", "technical_prose", "mmlu_fewshot_q1", "generated_greedy"}) {
    for (DType dtype : {DType::kFP16, DType::kFP32}) {
      io::DumpReadOptions opts;
      opts.dtype = dtype;
      auto cache = io::ReadDumpDir(absl::StrCat(shared, "/", run), opts);
      ASSERT_TRUE(cache.ok()) << cache.status();
      auto compressed = client_->Compress("zstd(3)", *cache);
      ASSERT_TRUE(compressed.ok()) << compressed.status();
      ASSERT_EQ(compressed->tensors.size(), cache->size());
      uint64_t raw = 0, comp = 0;
      for (size_t i = 0; i < cache->size(); ++i) {
        const CompressedTensor& t = compressed->tensors[i];
        EXPECT_EQ(t.name, (*cache)[i].name);
        EXPECT_EQ(t.report.raw_bytes, (*cache)[i].tensor.bytes.size());
        EXPECT_EQ(t.report.compressed_bytes, t.frame.size());  // every header counted
        EXPECT_EQ(t.report.layer, (*cache)[i].tensor.meta.layer);
        EXPECT_EQ(t.report.kind, (*cache)[i].tensor.meta.kind);
        EXPECT_EQ(t.report.dtype, dtype);
        EXPECT_TRUE(t.report.lossless);
        EXPECT_NE(t.report.codec.find("zstd"), std::string::npos) << t.report.codec;
        EXPECT_NEAR(t.report.ratio, double(t.report.raw_bytes) / t.frame.size(), 1e-9);
        raw += t.report.raw_bytes;
        comp += t.report.compressed_bytes;
      }
      EXPECT_EQ(compressed->totals.raw_bytes, raw);
      EXPECT_EQ(compressed->totals.compressed_bytes, comp);
      auto back = client_->Decompress(compressed->Frames());
      ASSERT_TRUE(back.ok()) << back.status();
      ExpectSameCache(*back, *cache);
    }
  }
}

TEST_F(ClientTest, Bf16AndTokenMajorRoundTrip) {
  io::KvCache cache = MakeCache(DType::kBF16, 2, 3, 17, 8, 4);
  cache[1].tensor.meta.layout = Layout::kTokenMajor;
  auto compressed = client_->Compress("zstd(1)", cache);
  ASSERT_TRUE(compressed.ok()) << compressed.status();
  std::vector<FrameRef> refs;
  for (const auto& t : compressed->tensors) refs.push_back({t.name, t.frame});
  auto back = client_->Decompress(refs);
  ASSERT_TRUE(back.ok()) << back.status();
  ExpectSameCache(*back, cache);
  EXPECT_EQ((*back)[3].name, cache[3].name);  // names are echoed
}

TEST_F(ClientTest, AnalyzeReportsEachCodecOnEachTensor) {
  const io::KvCache cache = MakeCache(DType::kFP16, 2, 4, 64, 8, 8);
  const std::vector<std::string> specs = {"zstd(1)", "zstd(9)"};
  auto analysis = client_->Analyze(specs, cache);
  ASSERT_TRUE(analysis.ok()) << analysis.status();
  ASSERT_GE(analysis->size(), specs.size());
  for (const std::string& spec : specs) {
    auto it = std::find_if(analysis->begin(), analysis->end(),
                           [&](const CodecAnalysis& a) { return a.codec == spec; });
    ASSERT_NE(it, analysis->end()) << spec;
    ASSERT_EQ(it->reports.size(), cache.size()) << spec;
    uint64_t raw = 0;
    for (const TensorReport& r : it->reports) {
      EXPECT_GT(r.compressed_bytes, 0u);
      EXPECT_TRUE(r.lossless);
      raw += r.raw_bytes;
    }
    EXPECT_EQ(it->totals.raw_bytes, raw);
    EXPECT_GT(it->totals.ratio, 0.0);
  }
}

TEST_F(ClientTest, ErrorsCarryTheGrpcCodeAndMessage) {
  const io::KvCache cache = MakeCache(DType::kFP16, 1, 2, 8, 8, 2);
  auto bad_codec = client_->Compress("zstdd(3)", cache);
  ASSERT_FALSE(bad_codec.ok());
  EXPECT_EQ(bad_codec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad_codec.status().message().find("Compress: "), absl::string_view::npos);
  EXPECT_NE(bad_codec.status().message().find("zstdd"), absl::string_view::npos)
      << bad_codec.status();

  io::KvCache mismatched = cache;
  mismatched[0].tensor.bytes.pop_back();  // bytes no longer match shape x dtype
  auto bad_size = client_->Compress("zstd(3)", mismatched);
  EXPECT_EQ(bad_size.status().code(), absl::StatusCode::kInvalidArgument) << bad_size.status();

  auto good = client_->Compress("zstd(3)", cache);
  ASSERT_TRUE(good.ok());
  std::vector<uint8_t> frame = good->tensors[0].frame;
  frame[frame.size() / 2] ^= 0x40;
  std::vector<absl::Span<const uint8_t>> frames = {frame};
  auto corrupt = client_->Decompress(frames);
  ASSERT_FALSE(corrupt.ok());
  EXPECT_TRUE(corrupt.status().code() == absl::StatusCode::kDataLoss ||
              corrupt.status().code() == absl::StatusCode::kInvalidArgument)
      << corrupt.status();
  EXPECT_TRUE(client_->Health().ok());  // still serving
}

TEST_F(ClientTest, HealthDeadlineMessageLimitAndUnavailable) {
  EXPECT_TRUE(client_->Health().ok());
  EXPECT_TRUE(client_->Health("kvcomp.v1.KVCompressor").ok());
  EXPECT_FALSE(client_->Health("no.such.Service").ok());

  const io::KvCache cache = MakeCache(DType::kFP32, 1, 4, 256, 8, 3);  // 32 KiB tensors
  ClientOptions tiny;
  tiny.max_message_bytes = 4096;
  auto small = Client::Connect(server_->address(), tiny);
  ASSERT_TRUE(small.ok());
  auto too_big = (*small)->Compress("zstd(3)", cache);
  EXPECT_EQ(too_big.status().code(), absl::StatusCode::kResourceExhausted) << too_big.status();

  ClientOptions hurried;
  hurried.timeout = absl::Microseconds(1);
  auto fast = Client::Connect(server_->address(), hurried);
  ASSERT_TRUE(fast.ok());
  auto late = (*fast)->Compress("zstd(3)", cache);
  EXPECT_EQ(late.status().code(), absl::StatusCode::kDeadlineExceeded) << late.status();

  const std::string address = server_->address();
  ASSERT_TRUE(server_->Stop().ok());
  ClientOptions quick;
  quick.timeout = absl::Seconds(5);
  auto orphan = Client::Connect(address, quick);
  ASSERT_TRUE(orphan.ok());
  auto gone = (*orphan)->Compress("zstd(3)", cache);
  EXPECT_EQ(gone.status().code(), absl::StatusCode::kUnavailable) << gone.status();
  ClientOptions waiting;
  waiting.connect_timeout = absl::Milliseconds(300);
  EXPECT_EQ(Client::Connect(address, waiting).status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace kvcomp::client

// The client library against the real kvcomp-server binary on a loopback port.
#include "client/kvcomp_client.h"

#include <fstream>
#include <future>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "client/io/dump.h"
#include "core/kvcomp/frame.h"
#include "gtest/gtest.h"
#include "tests/client/test_util.h"
#include "tests/support/http_get.h"
#include "tests/support/prom_text.h"
#include "tests/support/server_process.h"

namespace kvcomp::client {
namespace {

using kvcomp::testing::HttpGet;
using kvcomp::testing::MakeCache;
using kvcomp::testing::PromMetrics;
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
  // Tensors above the limit stream in token blocks; a single token above it cannot go.
  auto streamed = (*small)->Compress("zstd(3)", cache);
  ASSERT_TRUE(streamed.ok()) << streamed.status();
  const io::KvCache wide = MakeCache(DType::kFP32, 1, 16, 2, 128, 3);  // 8 KiB tokens
  auto too_big = (*small)->Compress("zstd(3)", wide);
  EXPECT_EQ(too_big.status().code(), absl::StatusCode::kResourceExhausted) << too_big.status();

  // A deadline far shorter than the work (lossless-max on 8 MiB: seconds): a deadline of a
  // microsecond raced a fast reply on a loaded machine, since gRPC enforces it with a timer.
  ClientOptions hurried;
  hurried.timeout = absl::Milliseconds(20);
  auto fast = Client::Connect(server_->address(), hurried);
  ASSERT_TRUE(fast.ok());
  const io::KvCache slow = MakeCache(DType::kFP32, 1, 8, 2048, 64, 3);  // 4 MiB tensors
  auto late = (*fast)->Compress("lossless-max", slow);
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

// The /metrics sample of grpc_server_handled_total for `method` and `code`.
double Handled(const std::string& metrics, const std::string& method,
               const std::string& code = "OK") {
  auto page = HttpGet(metrics, "/metrics");
  EXPECT_TRUE(page.ok()) << page.status();
  if (!page.ok()) return -1;
  auto m = PromMetrics::Parse(page->body);
  EXPECT_TRUE(m.ok()) << m.status();
  if (!m.ok()) return -1;
  return m->Sum("grpc_server_handled_total", {{"grpc_method", method}, {"grpc_code", code}});
}

// A 4 MiB tensor against 1 MiB message limits on the client and the server: Compress and
// Decompress stream it in token blocks (each frame decodes alone) and give back the same
// result types, bit-exact; /metrics shows the stream RPCs did the work.
TEST(ClientStreamTest, TensorAboveTheMessageLimitStreamsBitExact) {
  constexpr int kLimit = 1 << 20;
  auto server = ServerProcess::Start({"--max-message-bytes", std::to_string(kLimit)});
  ASSERT_TRUE(server.ok()) << server.status();
  ClientOptions o;
  o.max_message_bytes = kLimit;
  std::vector<std::pair<size_t, size_t>> progress;  // (answered, total) per streamed chunk
  o.on_chunk = [&progress](size_t answered, size_t total) {
    progress.emplace_back(answered, total);
  };
  auto client = Client::Connect((*server)->address(), o);
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_EQ((*client)->stream_threshold_bytes(), kLimit - kLimit / 16);
  // Layer 0 K and V, FP16 [8, 2048, 128]: 4 MiB each; plus a small tensor sent whole.
  io::KvCache cache = MakeCache(DType::kFP16, 1, 8, 2048, 128, 5);
  io::KvCache small = MakeCache(DType::kFP16, 2, 2, 16, 8, 6);
  cache.push_back(small.back());  // layer1_v, 1 KiB
  cache.back().tensor.meta.layout = Layout::kTokenMajor;

  auto compressed = (*client)->Compress("zstd(3)", cache);
  ASSERT_TRUE(compressed.ok()) << compressed.status();
  ASSERT_EQ(compressed->tensors.size(), 3u);
  uint64_t raw = 0;
  for (size_t i = 0; i < 3; ++i) {
    const CompressedTensor& t = compressed->tensors[i];
    auto frames = SplitFrames(t.frame);
    ASSERT_TRUE(frames.ok()) << frames.status();
    EXPECT_EQ(frames->size(), i < 2 ? 5u : 1u) << i;  // 2048 tokens in blocks of 479
    int64_t tokens = 0;
    for (auto f : *frames) {
      auto parsed = ParseFrame(f);
      ASSERT_TRUE(parsed.ok()) << parsed.status();
      EXPECT_LT(f.size(), static_cast<size_t>(kLimit));
      tokens += parsed->header.meta.shape[i < 2 ? 1 : 0];
    }
    EXPECT_EQ(tokens, cache[i].tensor.meta.shape[i < 2 ? 1 : 0]);
    EXPECT_EQ(t.name, cache[i].name);
    EXPECT_EQ(t.report.shape, cache[i].tensor.meta.shape);
    EXPECT_EQ(t.report.raw_bytes, cache[i].tensor.bytes.size());
    EXPECT_EQ(t.report.compressed_bytes, t.frame.size());
    EXPECT_EQ(t.report.codec, "zstd(3)");
    raw += t.report.raw_bytes;
  }
  EXPECT_EQ(compressed->totals.raw_bytes, raw);
  // Progress came once per answered chunk, counting up to the total.
  ASSERT_GT(progress.size(), 1u);
  for (size_t i = 0; i < progress.size(); ++i) {
    EXPECT_EQ(progress[i], std::make_pair(i + 1, progress.size()));
  }
  progress.clear();
  auto back = (*client)->Decompress(compressed->Frames());
  ASSERT_TRUE(back.ok()) << back.status();
  ExpectSameCache(*back, cache);
  ASSERT_GT(progress.size(), 1u);
  EXPECT_EQ(progress.back().first, progress.back().second);

  // The async calls take the same path.
  std::promise<absl::StatusOr<CompressResult>> async_compressed;
  (*client)->CompressAsync("zstd(3)", cache, [&](absl::StatusOr<CompressResult> r) {
    async_compressed.set_value(std::move(r));
  });
  absl::StatusOr<CompressResult> r = async_compressed.get_future().get();
  ASSERT_TRUE(r.ok()) << r.status();
  std::vector<FrameRef> refs;
  for (const CompressedTensor& t : r->tensors) refs.push_back({t.name, t.frame});
  std::promise<absl::StatusOr<io::KvCache>> async_back;
  (*client)->DecompressAsync(
      refs, [&](absl::StatusOr<io::KvCache> c) { async_back.set_value(std::move(c)); });
  absl::StatusOr<io::KvCache> got = async_back.get_future().get();
  ASSERT_TRUE(got.ok()) << got.status();
  ExpectSameCache(*got, cache);

  // Lossy: the blocks' error metrics merge into one report per tensor.
  auto lossy = (*client)->Compress("quant(8)+zstd(3)", absl::MakeConstSpan(cache.data(), 1));
  ASSERT_TRUE(lossy.ok()) << lossy.status();
  const TensorReport& report = lossy->tensors[0].report;
  EXPECT_FALSE(report.lossless);
  ASSERT_TRUE(report.error.has_value());
  EXPECT_GT(report.error->mae, 0);
  EXPECT_GT(report.error->cosine, 0.99);
  EXPECT_LE(report.error->cosine, 1.0);

  const std::string metrics = (*server)->metrics_address();
  EXPECT_EQ(Handled(metrics, "CompressStream"), 3);
  EXPECT_EQ(Handled(metrics, "DecompressStream"), 2);
  EXPECT_EQ(Handled(metrics, "Compress"), 0);
  EXPECT_EQ(Handled(metrics, "Decompress"), 0);

  // A frame made whole under bigger limits decodes to more than a message holds: refused on
  // the client, before anything is sent.
  ClientOptions big;
  big.max_message_bytes = 8 * kLimit;
  auto wide_server = ServerProcess::Start({"--max-message-bytes", std::to_string(8 * kLimit)});
  ASSERT_TRUE(wide_server.ok()) << wide_server.status();
  auto wide = Client::Connect((*wide_server)->address(), big);
  ASSERT_TRUE(wide.ok());
  auto whole = (*wide)->Compress("zstd(3)", absl::MakeConstSpan(cache.data(), 1));
  ASSERT_TRUE(whole.ok()) << whole.status();
  auto refused = (*client)->Decompress(whole->Frames());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted) << refused.status();
  EXPECT_EQ(Handled(metrics, "DecompressStream"), 2);
}

TEST_F(ClientTest, AsyncCallsRoundTripConcurrently) {
  const io::KvCache cache = MakeCache(DType::kFP16, 2, 2, 64, 16, 9);
  constexpr int kCalls = 8;
  std::vector<std::promise<absl::StatusOr<CompressResult>>> done(kCalls);
  for (int i = 0; i < kCalls; ++i) {
    client_->CompressAsync("zstd(3)", cache, [&done, i](absl::StatusOr<CompressResult> r) {
      done[i].set_value(std::move(r));
    });
  }
  for (int i = 0; i < kCalls; ++i) {
    absl::StatusOr<CompressResult> r = done[i].get_future().get();
    ASSERT_TRUE(r.ok()) << r.status();
    std::vector<FrameRef> refs;
    for (const CompressedTensor& t : r->tensors) refs.push_back({t.name, t.frame});
    std::promise<absl::StatusOr<io::KvCache>> back;
    client_->DecompressAsync(
        refs, [&back](absl::StatusOr<io::KvCache> c) { back.set_value(std::move(c)); });
    absl::StatusOr<io::KvCache> got = back.get_future().get();
    ASSERT_TRUE(got.ok()) << got.status();
    ExpectSameCache(*got, cache);
  }
  // Errors arrive through the callback with the server's code.
  std::promise<absl::StatusOr<CompressResult>> bad;
  client_->CompressAsync("zstdd(3)", cache,
                         [&bad](absl::StatusOr<CompressResult> r) { bad.set_value(std::move(r)); });
  EXPECT_EQ(bad.get_future().get().status().code(), absl::StatusCode::kInvalidArgument);
}

// Established TCP connections to 127.0.0.1:`port` from this machine's clients: rows of
// /proc/net/tcp and tcp6 (gRPC's sockets are dual-stack: ::ffff:127.0.0.1) whose remote end
// is the port; the server's own ends have it as their local port.
int ConnectionsTo(int port) {
  const std::string remote = absl::StrFormat("0100007F:%04X", port);
  int n = 0;
  for (const char* path : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream tcp(path);
    std::string line;
    std::getline(tcp, line);  // header
    while (std::getline(tcp, line)) {
      std::istringstream row(line);
      std::string slot, local, rem, state;
      row >> slot >> local >> rem >> state;
      n += absl::EndsWith(rem, remote) && state == "01";
    }
  }
  return n;
}

TEST_F(ClientTest, CallsSpreadOverSeveralConnections) {
  const int port = std::stoi(server_->address().substr(server_->address().rfind(':') + 1));
  ClientOptions options;
  options.connections = 3;
  options.connect_timeout = absl::Seconds(10);
  auto client = Client::Connect(server_->address(), options);
  ASSERT_TRUE(client.ok()) << client.status();
  const io::KvCache cache = MakeCache(DType::kFP16, 2, 2, 64, 16, 4);
  constexpr int kCalls = 6;
  std::vector<std::promise<absl::StatusOr<CompressResult>>> done(kCalls);
  for (int i = 0; i < kCalls; ++i) {
    (*client)->CompressAsync("lossless", cache, [&done, i](absl::StatusOr<CompressResult> r) {
      done[i].set_value(std::move(r));
    });
  }
  for (auto& d : done) {
    absl::StatusOr<CompressResult> r = d.get_future().get();
    ASSERT_TRUE(r.ok()) << r.status();
    absl::StatusOr<io::KvCache> back = (*client)->Decompress(r->Frames());
    ASSERT_TRUE(back.ok()) << back.status();
    ExpectSameCache(*back, cache);
  }
  // The fixture's client holds one connection (once it has made a call), this one three.
  ASSERT_TRUE(client_->Health().ok());
  EXPECT_EQ(ConnectionsTo(port), 4);
  for (int bad : {0, 65}) {
    options.connections = bad;
    EXPECT_EQ(Client::Connect(server_->address(), options).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
  }
}

double HandledCompress(const std::string& metrics, const std::string& code) {
  return Handled(metrics, "Compress", code);
}

TEST_F(ClientTest, OnlyUnavailableIsRetriedWithBackoff) {
  const io::KvCache cache = MakeCache(DType::kFP16, 1, 1, 8, 8, 2);
  ClientOptions o;
  o.retry.max_attempts = 5;
  auto c = Client::Connect(server_->address(), o);
  ASSERT_TRUE(c.ok());
  // A rejected request reaches the server exactly once, however many attempts are allowed.
  const double before = HandledCompress(server_->metrics_address(), "InvalidArgument");
  EXPECT_EQ((*c)->Compress("zstdd(3)", cache).status().code(), absl::StatusCode::kInvalidArgument);
  const double after = HandledCompress(server_->metrics_address(), "InvalidArgument");
  EXPECT_EQ(after - before, 1);

  // Nothing listens: 4 attempts wait 200 + 400 + 800 ms (no jitter) before failing; 1 attempt
  // does not wait.
  const std::string address = server_->address();
  ASSERT_TRUE(server_->Stop().ok());
  ClientOptions retrying;
  retrying.retry.max_attempts = 4;
  retrying.retry.initial_backoff = absl::Milliseconds(200);
  retrying.retry.max_backoff = absl::Seconds(1);
  retrying.retry.jitter = 0;
  auto r = Client::Connect(address, retrying);
  ASSERT_TRUE(r.ok());
  absl::Time t0 = absl::Now();
  EXPECT_EQ((*r)->Compress("zstd(3)", cache).status().code(), absl::StatusCode::kUnavailable);
  const absl::Duration waited = absl::Now() - t0;
  EXPECT_GE(waited, absl::Milliseconds(1400));
  EXPECT_LT(waited, absl::Seconds(20));
  // The async path retries too.
  std::promise<absl::StatusOr<CompressResult>> p;
  t0 = absl::Now();
  (*r)->CompressAsync("zstd(3)", cache,
                      [&p](absl::StatusOr<CompressResult> x) { p.set_value(std::move(x)); });
  EXPECT_EQ(p.get_future().get().status().code(), absl::StatusCode::kUnavailable);
  EXPECT_GE(absl::Now() - t0, absl::Milliseconds(1400));

  retrying.retry.max_attempts = 1;
  auto once = Client::Connect(address, retrying);
  ASSERT_TRUE(once.ok());
  t0 = absl::Now();
  EXPECT_EQ((*once)->Compress("zstd(3)", cache).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_LT(absl::Now() - t0, absl::Milliseconds(1400));

  ClientOptions bad;
  bad.retry.jitter = 2;
  EXPECT_EQ(Client::Connect(address, bad).status().code(), absl::StatusCode::kInvalidArgument);
}

// A rollout: the server goes away and a new one comes up on the same address while a call is
// retrying. The early attempts find nothing listening; a later one reaches the new server,
// which handles the call exactly once.
TEST_F(ClientTest, RetrySucceedsAcrossAServerRestart) {
  const io::KvCache cache = MakeCache(DType::kFP16, 1, 2, 16, 8, 3);
  ClientOptions o;
  o.retry.max_attempts = 30;
  o.retry.initial_backoff = absl::Milliseconds(100);
  o.retry.max_backoff = absl::Seconds(1);
  auto c = Client::Connect(server_->address(), o);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE((*c)->Compress("zstd(3)", cache).ok());  // connected to the first server

  const std::string address = server_->address();
  ASSERT_TRUE(server_->Stop().ok());
  absl::StatusOr<std::unique_ptr<ServerProcess>> restarted;
  std::thread restart([&] {
    absl::SleepFor(absl::Seconds(1));
    restarted = ServerProcess::Start({"--listen", address});
  });
  auto r = (*c)->Compress("zstd(3)", cache);
  restart.join();
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  ASSERT_TRUE(r.ok()) << r.status();
  auto back = (*c)->Decompress(r->Frames());
  ASSERT_TRUE(back.ok()) << back.status();
  ExpectSameCache(*back, cache);
  EXPECT_EQ(HandledCompress((*restarted)->metrics_address(), "OK"), 1);
}

TEST_F(ClientTest, TlsOptions) {
  const io::KvCache cache = MakeCache(DType::kFP16, 1, 1, 8, 8, 2);
  // A certificate without its key, or unreadable files, are refused before connecting.
  ClientOptions half;
  half.tls.enabled = true;
  half.tls.cert_chain_path = "/etc/hostname";
  EXPECT_EQ(Client::Connect(server_->address(), half).status().code(),
            absl::StatusCode::kInvalidArgument);
  ClientOptions missing;
  missing.tls.enabled = true;
  missing.tls.root_ca_path = "/nonexistent/ca.pem";
  EXPECT_EQ(Client::Connect(server_->address(), missing).status().code(),
            absl::StatusCode::kInvalidArgument);
  // TLS towards this plaintext server: the handshake fails, so the call never succeeds.
  ClientOptions tls;
  tls.tls.enabled = true;
  tls.retry.max_attempts = 1;
  tls.timeout = absl::Seconds(5);
  auto c = Client::Connect(server_->address(), tls);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)->Compress("zstd(3)", cache).status().code(), absl::StatusCode::kUnavailable);
}

// Runs openssl; the test fails if it does.
void OpenSsl(std::vector<std::string> args) {
  args.insert(args.begin(), "/usr/bin/openssl");
  kvcomp::testing::ProcessResult r = kvcomp::testing::Run(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
}

// A CA, a server certificate for 127.0.0.1 / localhost and a client certificate, in `dir`.
void MakeCertificates(const kvcomp::testing::TempDir& dir) {
  const std::vector<std::string> ec = {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                                       "-nodes"};
  auto with = [&](std::vector<std::string> a) {
    a.insert(a.end(), ec.begin(), ec.end());
    return a;
  };
  OpenSsl(with({"req", "-x509", "-days", "2", "-subj", "/CN=kvcomp test CA", "-keyout",
                dir / "ca.key", "-out", dir / "ca.pem"}));
  for (const std::string who : {"server", "client"}) {
    OpenSsl(with({"req", "-subj", "/CN=kvcomp test " + who, "-keyout", dir / (who + ".key"), "-out",
                  dir / (who + ".csr")}));
    kvcomp::testing::WriteAll(
        dir / (who + ".ext"),
        kvcomp::testing::Bytes(who == "server" ? "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                                                 "extendedKeyUsage=serverAuth\n"
                                               : "extendedKeyUsage=clientAuth\n"));
    OpenSsl({"x509", "-req", "-days", "2", "-in", dir / (who + ".csr"), "-CA", dir / "ca.pem",
             "-CAkey", dir / "ca.key", "-CAcreateserial", "-extfile", dir / (who + ".ext"), "-out",
             dir / (who + ".pem")});
  }
}

TEST(ClientTlsTest, MutualTlsEndToEnd) {
  kvcomp::testing::ProcessResult help =
      kvcomp::testing::Run({ServerProcess::BinaryPath(), "--help"});
  if (help.out.find("--tls-require-client-cert") == std::string::npos) {
    GTEST_SKIP() << "this kvcomp-server has no TLS flags yet";
  }
  kvcomp::testing::TempDir dir;
  ASSERT_NO_FATAL_FAILURE(MakeCertificates(dir));
  auto server =
      ServerProcess::Start({"--tls-cert", dir / "server.pem", "--tls-key", dir / "server.key",
                            "--tls-ca", dir / "ca.pem", "--tls-require-client-cert"});
  ASSERT_TRUE(server.ok()) << server.status();
  const io::KvCache cache = MakeCache(DType::kFP16, 1, 2, 16, 8, 4);
  ClientOptions o;
  o.timeout = absl::Seconds(10);
  o.retry.max_attempts = 1;
  o.tls.enabled = true;
  o.tls.root_ca_path = dir / "ca.pem";
  o.tls.cert_chain_path = dir / "client.pem";
  o.tls.private_key_path = dir / "client.key";
  auto c = Client::Connect((*server)->address(), o);
  ASSERT_TRUE(c.ok()) << c.status();
  auto out = (*c)->Compress("zstd(3)", cache);
  ASSERT_TRUE(out.ok()) << out.status();
  auto back = (*c)->Decompress(out->Frames());
  ASSERT_TRUE(back.ok()) << back.status();
  for (size_t i = 0; i < cache.size(); ++i)
    EXPECT_EQ((*back)[i].tensor.bytes, cache[i].tensor.bytes);
  EXPECT_TRUE((*c)->Health().ok());

  // Without a client certificate, with the wrong CA, or in plaintext: refused.
  ClientOptions no_cert = o;
  no_cert.tls.cert_chain_path.clear();
  no_cert.tls.private_key_path.clear();
  ClientOptions wrong_ca = o;
  wrong_ca.tls.root_ca_path = dir / "client.pem";
  ClientOptions plain = o;
  plain.tls = {};
  for (const ClientOptions* bad : {&no_cert, &wrong_ca, &plain}) {
    auto b = Client::Connect((*server)->address(), *bad);
    ASSERT_TRUE(b.ok()) << b.status();
    EXPECT_FALSE((*b)->Compress("zstd(3)", cache).ok());
  }
}

}  // namespace
}  // namespace kvcomp::client

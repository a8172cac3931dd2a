// Issue 25: one request must never crash, stall or bloat the server. Each test reproduces a
// finding of the adversarial review against a real kvcomp-server on loopback, through the
// public API only, and ends by showing the server still serves (docs/RELIABILITY.md lists
// them).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstring>
#include <filesystem>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <grpcpp/generic/generic_stub.h>
#include <gtest/gtest.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/kvcomp/codec.h"
#include "tests/server/server_fixture.h"
#include "tests/support/http_get.h"

namespace kvcomp::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

// A tensor of FP16 ones with `shape` (head-major), named `name`.
v1::Tensor Ones(const std::string& name, const std::vector<int64_t>& shape,
                v1::TensorKind kind = v1::TENSOR_KIND_K) {
  v1::Tensor t;
  t.set_name(name);
  t.set_layer(0);
  t.set_kind(kind);
  t.set_datatype("FP16");
  int64_t n = 1;
  for (int64_t d : shape) {
    t.add_shape(d);
    n *= d;
  }
  std::string bytes;
  for (int64_t i = 0; i < n; ++i) bytes.append("\x00\x3c", 2);  // 1.0 in FP16
  t.set_raw_contents(bytes);
  return t;
}

// grpc_server_handled_total for `method`, by code, from a scrape.
std::map<std::string, double> HandledByCode(const ServerProcess& server,
                                            const std::string& method) {
  std::map<std::string, double> out;
  absl::StatusOr<HttpResponse> scrape = HttpGet(server.metrics_address(), "/metrics");
  if (!scrape.ok()) return out;
  absl::StatusOr<PromMetrics> metrics = PromMetrics::Parse(scrape->body);
  if (!metrics.ok()) return out;
  for (const PromSample& s : metrics->samples()) {
    if (s.name != "grpc_server_handled_total") continue;
    auto m = s.labels.find("grpc_method");
    auto c = s.labels.find("grpc_code");
    if (m != s.labels.end() && m->second == method && c != s.labels.end() && s.value > 0) {
      out[c->second] += s.value;
    }
  }
  return out;
}

// Waits up to `seconds` for `done` to hold, polling.
template <typename F>
bool WaitFor(F done, double seconds) {
  const auto until = Clock::now() + std::chrono::duration<double>(seconds);
  while (Clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return done();
}

class HardeningTest : public ServerTest {};

// Tests that start their server with flags of their own.
class HardeningFlagsTest : public ServerTest {
 protected:
  void SetUp() override {}
};

// Finding 1: Analyze's RoPE check on a rank-1 K tensor wrote past its buffer (heap corruption,
// the server killed). It is INVALID_ARGUMENT naming the tensor's shape.
TEST_F(HardeningTest, RopeCheckOnRankOneKIsInvalidArgument) {
  auto analyze_with_rope = [&](const v1::Tensor& k, v1::AnalyzeResponse* response) {
    v1::AnalyzeRequest request;
    request.add_codecs("zstd(3)");
    request.mutable_rope_theta()->set_value(10000);
    *request.add_tensors() = k;
    grpc::ClientContext context;
    return stub_->Analyze(&context, request, response);
  };
  for (int64_t n : {64, 16384}) {
    v1::AnalyzeResponse response;
    grpc::Status s = analyze_with_rope(Ones("k", {n}), &response);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr(absl::StrCat("shape [", n, "]")));
  }
  // Rank 2 and more still get the check.
  v1::AnalyzeResponse response;
  grpc::Status s = analyze_with_rope(SyntheticTensor("k", 0, v1::TENSOR_KIND_K, 2, 64), &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(response.has_rope());
  ExpectServesGoodRequest(*stub_);
}

// A frame of an empty tensor (shape [4, 0, 8]), 44 bytes or so.
std::string EmptyTensorFrame(v1::KVCompressor::Stub& stub) {
  v1::CompressRequest request;
  request.set_codec("zstd(3)");
  *request.add_tensors() = Ones("", {4, 0, 8});
  v1::CompressResponse response;
  grpc::ClientContext context;
  EXPECT_TRUE(stub.Compress(&context, request, &response).ok());
  return response.tensors_size() == 1 ? response.tensors(0).frame() : std::string();
}

// Finding 2: frames of empty tensors escaped --max-decompressed-bytes (each decodes to 0
// bytes), so one request could carry a million of them. Each tensor now counts what it adds to
// the reply, its metadata included.
TEST_F(HardeningFlagsTest, EmptyTensorFramesCountAgainstTheDecodeLimit) {
  ASSERT_NO_FATAL_FAILURE(StartServer({"--max-decompressed-bytes", "1048576"}));
  const std::string frame = EmptyTensorFrame(*stub_);
  ASSERT_FALSE(frame.empty());
  ASSERT_LT(frame.size(), 64u);
  v1::DecompressRequest request;
  for (int i = 0; i < 200000; ++i) request.add_tensors()->set_frame(frame);
  v1::DecompressResponse response;
  grpc::ClientContext context;
  grpc::Status s = stub_->Decompress(&context, request, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("with their metadata (--max-decompressed-bytes)"));
  EXPECT_EQ(HandledByCode(*server_, "Decompress"),
            (std::map<std::string, double>{{"ResourceExhausted", 1}}));
  ExpectServesGoodRequest(*stub_);
}

// Finding 2, the count: a call whose work finished after its client's deadline was counted
// OK (the empty-frame Decompress of the review ran 76 s past it). One Analyze configuration
// over a 4 MiB tensor (lossless-max: most of a second or more of work, checked between
// tensors) under a 200 ms deadline: the client sees DEADLINE_EXCEEDED, and the server now
// counts that, not OK.
TEST_F(HardeningFlagsTest, ACallIsCountedAsTheCodeItsClientSaw) {
  ASSERT_NO_FATAL_FAILURE(StartServer({"--workers", "1"}));
  v1::AnalyzeRequest request;
  request.add_codecs("lossless-max");
  *request.add_tensors() = SyntheticTensor("k", 0, v1::TENSOR_KIND_K, 8, 2048 * 16);
  v1::AnalyzeResponse response;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
  grpc::Status s = stub_->Analyze(&context, request, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << s.error_message();
  std::map<std::string, double> counted;
  EXPECT_TRUE(WaitFor(
      [&] {
        counted = HandledByCode(*server_, "Analyze");
        return !counted.empty();
      },
      60));
  EXPECT_EQ(counted, (std::map<std::string, double>{{"DeadlineExceeded", 1}}));
  ExpectServesGoodRequest(*stub_);
}

// Finding 3: every call to a made-up method path added ~18 series labelled with the caller's
// names. Labels now come from a closed set, with "unknown" for any other path.
TEST_F(HardeningTest, MadeUpMethodPathsAddNoMetricSeries) {
  auto channel = UnlimitedChannel(server_->address());
  grpc::GenericStub generic(channel);
  auto series = [&] {
    absl::StatusOr<HttpResponse> scrape = HttpGet(server_->metrics_address(), "/metrics");
    EXPECT_TRUE(scrape.ok());
    absl::StatusOr<PromMetrics> metrics = PromMetrics::Parse(scrape->body);
    EXPECT_TRUE(metrics.ok());
    std::set<std::string> methods;
    for (const PromSample& s : metrics->samples()) {
      auto m = s.labels.find("grpc_method");
      if (m != s.labels.end()) methods.insert(m->second);
    }
    return std::make_pair(metrics->samples().size(), methods);
  };
  // Known methods are there from the start, at 0.
  const auto [before, methods_before] = series();
  EXPECT_TRUE(methods_before.count("Compress") && methods_before.count("DecompressStream") &&
              methods_before.count("Check"));
  for (int i = 0; i < 50; ++i) {
    grpc::Slice slice(std::string("x"));
    grpc::ByteBuffer request(&slice, 1), response;
    grpc::ClientContext context;
    grpc::CompletionQueue cq;
    auto call =
        generic.PrepareUnaryCall(&context, absl::StrCat("/evil.Svc", i, "/M", i), request, &cq);
    call->StartCall();
    grpc::Status status;
    call->Finish(&response, &status, reinterpret_cast<void*>(1));
    void* tag;
    bool ok;
    ASSERT_TRUE(cq.Next(&tag, &ok));
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNIMPLEMENTED);
    cq.Shutdown();
    while (cq.Next(&tag, &ok)) {
    }
  }
  const auto [after, methods_after] = series();
  std::set<std::string> added;
  for (const std::string& m : methods_after) {
    if (!methods_before.count(m)) added.insert(m);
  }
  EXPECT_THAT(added, ::testing::IsEmpty());
  // The unknown method's handled counter per code, at most: a handful of series, not 900.
  EXPECT_LE(after, before + 2);
  EXPECT_EQ(HandledByCode(*server_, "unknown"),
            (std::map<std::string, double>{{"Unimplemented", 50}}));
}

// A TCP connection to `address` ("127.0.0.1:PORT"), or -1.
int ConnectTcp(const std::string& address) {
  const size_t colon = address.rfind(':');
  int port = 0;
  if (!absl::SimpleAtoi(address.substr(colon + 1), &port)) return -1;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Finding 4: two idle connections to the metrics port (or an unfinished GET line) stalled
// every scrape for as long as they stayed open. More threads, and a timeout on every read.
TEST_F(HardeningTest, IdleMetricsConnectionsDoNotBlockScrapes) {
  std::vector<int> idle;
  for (int i = 0; i < 4; ++i) idle.push_back(ConnectTcp(server_->metrics_address()));
  const int partial = ConnectTcp(server_->metrics_address());
  idle.push_back(partial);
  for (int fd : idle) ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(partial, "GET /metr", 9), 9);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const auto start = Clock::now();
  absl::StatusOr<HttpResponse> scrape = HttpGet(server_->metrics_address(), "/metrics");
  ASSERT_TRUE(scrape.ok()) << scrape.status();
  EXPECT_EQ(scrape->status, 200);
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - start).count(), 10);
  // The idle ones are closed by the server within its read timeout (5 s); the unfinished
  // request may get an error answer first.
  for (int fd : idle) {
    char b[512];
    timeval tv{15, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ssize_t n;
    while ((n = ::read(fd, b, sizeof b)) > 0) {
    }
    EXPECT_TRUE(n == 0 || errno == ECONNRESET) << "connection still open: " << std::strerror(errno);
    ::close(fd);
  }
}

// Opens a DecompressStream on `stub` that sends nothing.
struct IdleStream {
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReaderWriter<v1::DecompressRequest, v1::DecompressResponse>> stream;
  explicit IdleStream(v1::KVCompressor::Stub& stub) : stream(stub.DecompressStream(&context)) {}
};

// Finding 5: streams that send nothing held every call slot, for as long as they stayed open.
// An idle stream is now ended after --stream-idle-timeout-seconds, saying why.
TEST_F(HardeningFlagsTest, IdleStreamsAreEndedAndFreeTheirSlots) {
  ASSERT_NO_FATAL_FAILURE(StartServer({"--max-concurrent-calls", "4", "--max-calls-per-connection",
                                       "0", "--stream-idle-timeout-seconds", "1"}));
  std::vector<std::unique_ptr<IdleStream>> streams;
  for (int i = 0; i < 4; ++i) streams.push_back(std::make_unique<IdleStream>(*stub_));
  ASSERT_TRUE(WaitFor([&] { return ScrapeSum(*server_, "kvcomp_in_flight_calls") == 4; }, 10));
  for (auto& s : streams) {
    v1::DecompressResponse r;
    EXPECT_FALSE(s->stream->Read(&r));
    grpc::Status status = s->stream->Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
    EXPECT_THAT(status.error_message(), HasSubstr("--stream-idle-timeout-seconds"));
  }
  EXPECT_EQ(HandledByCode(*server_, "DecompressStream"),
            (std::map<std::string, double>{{"DeadlineExceeded", 4}}));
  ExpectServesGoodRequest(*stub_);
}

// Finding 5, the share: with --max-calls-per-connection, one connection's idle streams take at
// most that many slots (HTTP/2 queues the rest on the client), and another client is served.
TEST_F(HardeningFlagsTest, OneConnectionCannotHoldEverySlot) {
  ASSERT_NO_FATAL_FAILURE(StartServer({"--max-concurrent-calls", "8", "--max-calls-per-connection",
                                       "2", "--stream-idle-timeout-seconds", "0"}));
  auto greedy = v1::KVCompressor::NewStub(UnlimitedChannel(server_->address()));
  // Each opened in a thread of its own: a synchronous stream's start blocks while HTTP/2 holds
  // it back.
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::thread> openers;
  for (int i = 0; i < 8; ++i) {
    grpc::ClientContext* context = contexts.emplace_back(new grpc::ClientContext).get();
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    openers.emplace_back([&greedy, context] {
      auto stream = greedy->DecompressStream(context);
      v1::DecompressResponse r;
      stream->Read(&r);  // until cancelled
      stream->Finish();
    });
  }
  ASSERT_TRUE(WaitFor([&] { return ScrapeSum(*server_, "kvcomp_in_flight_calls") >= 2; }, 10));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(ScrapeSum(*server_, "kvcomp_in_flight_calls"), 2);
  auto other = v1::KVCompressor::NewStub(UnlimitedChannel(server_->address()));
  ExpectServesGoodRequest(*other);
  for (auto& c : contexts) c->TryCancel();
  for (std::thread& t : openers) t.join();
}

// Finding 5, unread answers: a stream whose client never reads its 8 MiB answer held it (and
// its slot) forever. The write is cancelled after the idle timeout.
TEST_F(HardeningFlagsTest, AnAnswerNeverReadIsCancelledAndItsSlotFreed) {
  ASSERT_NO_FATAL_FAILURE(
      StartServer({"--max-concurrent-calls", "1", "--stream-idle-timeout-seconds", "1"}));
  // 8 MiB decoded from a small frame: an answer far past HTTP/2's windows.
  v1::CompressRequest big;
  big.set_codec("zstd(3)");
  *big.add_tensors() = Ones("big", {64, 1024, 64});
  v1::CompressResponse compressed;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(stub_->Compress(&context, big, &compressed).ok());
  }
  IdleStream reader(*stub_);
  v1::DecompressRequest chunk;
  *chunk.add_tensors() = compressed.tensors(0);
  ASSERT_TRUE(reader.stream->Write(chunk));  // and never Read
  EXPECT_TRUE(WaitFor(
      [&] {
        return HandledByCode(*server_, "DecompressStream") ==
               std::map<std::string, double>{{"Canceled", 1}};
      },
      20));
  EXPECT_TRUE(WaitFor([&] { return ScrapeSum(*server_, "kvcomp_in_flight_calls") == 0; }, 10));
  reader.context.TryCancel();
  ExpectServesGoodRequest(*stub_);
}

// Finding 6: Compress accepted layer < -1 and wrote frames that Decompress then refused.
TEST_F(HardeningTest, LayerBelowMinusOneIsInvalidArgument) {
  for (int layer : {-2, -5, INT_MIN}) {
    v1::CompressRequest request;
    request.set_codec("zstd(3)");
    *request.add_tensors() = SyntheticTensor("t", layer, v1::TENSOR_KIND_K, 2, 16);
    v1::CompressResponse response;
    grpc::ClientContext context;
    grpc::Status s = stub_->Compress(&context, request, &response);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr(absl::StrCat("layer ", layer, " is out of range")));
  }
  ExpectServesGoodRequest(*stub_);
}

// Finding 7: caller strings came back whole in status messages; past ~8-16 KB a default client
// saw "received initial metadata size exceeds limit" instead. Through a default channel, each
// error now arrives, quoting a bounded prefix.
TEST_F(HardeningTest, LongCallerStringsAreQuotedBounded) {
  auto stub = v1::KVCompressor::NewStub(
      grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials()));
  const std::string huge(1700000, 'z');
  auto expect_bounded = [](const grpc::Status& s, const std::string& what) {
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << what << ": " << s.error_message();
    EXPECT_LT(s.error_message().size(), 2200u) << what;
    EXPECT_THAT(s.error_message(), Not(HasSubstr("metadata size exceeds"))) << what;
  };
  {  // a spec
    v1::CompressRequest request;
    request.set_codec("zstd(3)+" + huge);
    *request.add_tensors() = SyntheticTensor("t", 0, v1::TENSOR_KIND_K, 2, 16);
    v1::CompressResponse response;
    grpc::ClientContext context;
    grpc::Status s = stub->Compress(&context, request, &response);
    expect_bounded(s, "spec");
    EXPECT_THAT(s.error_message(), HasSubstr("(1700008 bytes)"));
  }
  {  // a tensor name, with a datatype as long
    v1::CompressRequest request;
    request.set_codec("zstd(3)");
    v1::Tensor t = SyntheticTensor(huge, 0, v1::TENSOR_KIND_K, 2, 16);
    t.set_datatype(huge);
    *request.add_tensors() = t;
    v1::CompressResponse response;
    grpc::ClientContext context;
    grpc::Status s = stub->Compress(&context, request, &response);
    expect_bounded(s, "name and datatype");
    EXPECT_THAT(s.error_message(), HasSubstr("unknown datatype 'zzz"));
  }
  {  // a sweep name
    v1::AnalyzeRequest request;
    request.add_sweeps(huge);
    *request.add_tensors() = SyntheticTensor("k", 0, v1::TENSOR_KIND_K, 2, 16);
    v1::AnalyzeResponse response;
    grpc::ClientContext context;
    grpc::Status s = stub->Analyze(&context, request, &response);
    expect_bounded(s, "sweep");
    EXPECT_THAT(s.error_message(), HasSubstr("unknown sweep 'zzz"));
  }
  ExpectServesGoodRequest(*stub_);
}

// Finding 8: a reply over --max-message-bytes failed in the send, counted OK, and the client saw
// only "Sent message larger than max". It is RESOURCE_EXHAUSTED before sending, saying why.
TEST_F(HardeningFlagsTest, AReplyOverTheSendLimitIsRefusedAndCountedSo) {
  ASSERT_NO_FATAL_FAILURE(StartServer({"--max-message-bytes", "4194304"}));
  // Per-channel quantisation of a tensor of 1 token: a scale and offset per value, about 5x.
  v1::CompressRequest request;
  request.set_codec("quant(bits=8,group=channel)");
  *request.add_tensors() = SyntheticTensor("one-token", 0, v1::TENSOR_KIND_K, 1, 1);
  v1::Tensor& t = *request.mutable_tensors(0);
  t.clear_shape();
  t.add_shape(1);
  t.add_shape(1);
  t.add_shape(1 << 20);
  std::string bytes;
  for (int i = 0; i < (1 << 20); ++i) bytes.append(i % 2 ? "\x00\x3c" : "\x00\xbc", 2);
  t.set_raw_contents(bytes);
  v1::CompressResponse response;
  grpc::ClientContext c1;
  grpc::Status s = stub_->Compress(&c1, request, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("the reply would be"));
  EXPECT_THAT(s.error_message(), HasSubstr("--max-message-bytes"));
  EXPECT_EQ(HandledByCode(*server_, "Compress"),
            (std::map<std::string, double>{{"ResourceExhausted", 1}}));

  // Decompress of exactly 4 MiB: within the decode limit by its data, over it with its
  // metadata, refused before the send. (The frame is made in process: the request to make it
  // would itself be over the server's limit.)
  TensorMeta meta;
  meta.shape = {8, 1024, 256};  // 4 MiB of FP16
  const std::vector<uint8_t> ones(meta.NumBytes(), 0x3c);
  auto codec = MakeCodec("zstd(3)");
  ASSERT_TRUE(codec.ok());
  auto frame = (*codec)->Compress(*TensorView::Make(meta, ones));
  ASSERT_TRUE(frame.ok()) << frame.status();
  v1::DecompressRequest back;
  back.add_tensors()->set_frame(frame->frame.data(), frame->frame.size());
  v1::DecompressResponse decoded;
  grpc::ClientContext c3;
  s = stub_->Decompress(&c3, back, &decoded);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_THAT(s.error_message(), Not(HasSubstr("Sent message larger")));
  EXPECT_EQ(HandledByCode(*server_, "Decompress"),
            (std::map<std::string, double>{{"ResourceExhausted", 1}}));
  ExpectServesGoodRequest(*stub_);
}

// Finding 9: gRPC binds with SO_REUSEPORT, so a second server on a port in use started and took
// half the clients. It now fails to start, saying so.
TEST_F(HardeningTest, ASecondServerOnAPortInUseFailsToStart) {
  std::string out;
  // (Under `timeout`: a server that does start, as it did with SO_REUSEPORT, never returns.)
  const int rc = RunCommand("timeout 20 " + ServerProcess::BinaryPath() + " --listen " +
                                server_->address() + " --metrics 127.0.0.1:0",
                            &out);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_THAT(out, HasSubstr("cannot serve gRPC on " + server_->address()));
  out.clear();
  EXPECT_EQ(RunCommand("timeout 20 " + ServerProcess::BinaryPath() +
                           " --listen 127.0.0.1:0 --metrics " + server_->metrics_address(),
                       &out),
            1)
      << out;
  EXPECT_THAT(out, HasSubstr("cannot serve metrics"));
  ExpectServesGoodRequest(*stub_);
}

// Finding 11: Analyze thresholds were not validated (NaN, a cosine of 2 or -5, a negative MAE),
// and gave verdicts like "cos 1 < nan". They are refused as spec strings refuse them.
TEST_F(HardeningTest, AnalyzeThresholdsOutOfRangeAreInvalidArgument) {
  struct Case {
    const char* field;
    double value;
  };
  for (const Case& c : {Case{"cos", std::nan("")}, Case{"cos", 2}, Case{"cos", -5}, Case{"mae", -1},
                        Case{"snr_db", INFINITY}}) {
    v1::AnalyzeRequest request;
    request.add_codecs("zstd(3)");
    *request.add_tensors() = SyntheticTensor("k", 0, v1::TENSOR_KIND_K, 2, 16);
    v1::ErrorThresholds* t = request.mutable_v_thresholds();
    if (std::string(c.field) == "cos") t->mutable_cosine()->set_value(c.value);
    if (std::string(c.field) == "mae") t->mutable_mae()->set_value(c.value);
    if (std::string(c.field) == "snr_db") t->mutable_snr_db()->set_value(c.value);
    v1::AnalyzeResponse response;
    grpc::ClientContext context;
    grpc::Status s = stub_->Analyze(&context, request, &response);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.field << "=" << c.value;
    EXPECT_THAT(s.error_message(), HasSubstr(absl::StrCat("V thresholds: bound '", c.field, "'")));
  }
  ExpectServesGoodRequest(*stub_);
}

}  // namespace
}  // namespace kvcomp::testing

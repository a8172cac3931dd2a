// Faults (docs/RELIABILITY.md): a client that cancels mid-stream, a deadline that expires
// inside a long Compress, the server SIGKILLed under a running `kvcomp compress`, malformed
// protobuf bytes, truncated frames in a stream and in a .kvc file, and a frame whose header
// (checksum intact) claims an impossible shape. Each runs against a real kvcomp-server on
// loopback, and each checks that the server is still up where it should be.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/kvcomp/frame.h"
#include "tests/server/server_fixture.h"
#include "tests/server/stream_helpers.h"
#include "tests/support/http_get.h"

namespace kvcomp::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::AnyOf;
using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// grpc_server_handled_total for `method` and `code`, polled until it reaches `want` (the
// counter is bumped when the call is done on the server, a moment after the client sees it).
double WaitForHandled(const ServerProcess& server, const std::string& method,
                      const std::string& code, double want) {
  double got = -1;
  for (int i = 0; i < 1000; ++i) {
    absl::StatusOr<PromMetrics> m = [&]() -> absl::StatusOr<PromMetrics> {
      auto r = HttpGet(server.metrics_address(), "/metrics");
      if (!r.ok()) return r.status();
      return PromMetrics::Parse(r->body);
    }();
    if (m.ok()) {
      got = m->Sum("grpc_server_handled_total", {{"grpc_method", method}, {"grpc_code", code}});
      if (got >= want) return got;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return got;
}

class FaultTest : public ServerTest {
 protected:
  // `tensors` through zstd(3); fails the test unless the call succeeds.
  v1::CompressResponse Frames(const std::vector<v1::Tensor>& tensors) {
    v1::CompressRequest request;
    request.set_codec("zstd(3)");
    for (const v1::Tensor& t : tensors) *request.add_tensors() = t;
    v1::CompressResponse compressed;
    grpc::ClientContext context;
    grpc::Status s = stub_->Compress(&context, request, &compressed);
    EXPECT_TRUE(s.ok()) << s.error_code() << ": " << s.error_message();
    EXPECT_EQ(compressed.tensors_size(), request.tensors_size());
    return compressed;
  }
  // A DecompressStream on `context` that has decoded `frame` as its chunk 0.
  std::unique_ptr<grpc::ClientReaderWriter<v1::DecompressRequest, v1::DecompressResponse>>
  StreamPastChunk0(grpc::ClientContext* context, const v1::CompressedTensor& frame) {
    auto stream = stub_->DecompressStream(context);
    v1::DecompressRequest chunk;
    *chunk.add_tensors() = frame;
    EXPECT_TRUE(stream->Write(chunk));
    v1::DecompressResponse answer;
    EXPECT_TRUE(stream->Read(&answer));
    EXPECT_EQ(answer.tensors_size(), 1);
    return stream;
  }
};

// --- A client cancels mid-stream ------------------------------------------------------------

TEST_F(FaultTest, ClientCancelsCompressStreamMidStream) {
  const v1::Tensor k = SyntheticTensor("k", 0, v1::TENSOR_KIND_K, 4, 1024);
  grpc::ClientContext context;
  auto stream = stub_->CompressStream(&context);
  for (int offset = 0; offset < 512; offset += 128) {  // 4 of 8 blocks, then give up
    v1::CompressRequest chunk;
    chunk.set_codec("zstd(3)");
    *chunk.add_tensors() = TokenBlock(k, offset, 128, 2);
    ASSERT_TRUE(stream->Write(chunk));
    v1::CompressResponse answer;
    ASSERT_TRUE(stream->Read(&answer));
  }
  context.TryCancel();
  v1::CompressResponse answer;
  EXPECT_FALSE(stream->Read(&answer));
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);

  EXPECT_EQ(WaitForHandled(*server_, "CompressStream", "Canceled", 1), 1);
  EXPECT_EQ(WaitForHandled(*server_, "CompressStream", "OK", 0), 0);
  ExpectServesGoodRequest(*stub_);
  // The stream released its slot: nothing is left in flight (the gauge drops a moment after
  // each call's answer has gone out).
  double in_flight = -1;
  for (int i = 0; i < 1000 && in_flight != 0; ++i) {
    if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    in_flight = ScrapeSum(*server_, "kvcomp_in_flight_calls");
  }
  EXPECT_EQ(in_flight, 0);
}

TEST_F(FaultTest, ClientCancelsDecompressStreamWithAChunkOnTheServer) {
  // A frame big enough that the server is still decoding when the client cancels.
  const v1::CompressResponse compressed =
      Frames({SyntheticTensor("v", 0, v1::TENSOR_KIND_V, 8, 8192)});
  ASSERT_FALSE(HasFailure());

  grpc::ClientContext context;
  auto stream = StreamPastChunk0(&context, compressed.tensors(0));
  ASSERT_FALSE(HasFailure());
  v1::DecompressRequest chunk;
  *chunk.add_tensors() = compressed.tensors(0);
  ASSERT_TRUE(stream->Write(chunk));  // the second is sent, its answer never read
  context.TryCancel();
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);

  EXPECT_EQ(WaitForHandled(*server_, "DecompressStream", "Canceled", 1), 1);
  ExpectServesGoodRequest(*stub_);
}

// --- The client's deadline expires inside a long Compress -------------------------------------

TEST(FaultDeadlineTest, DeadlineInsideALongCompressFreesTheWorker) {
  auto server = ServerProcess::Start({"--workers", "1"});
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = v1::KVCompressor::NewStub(UnlimitedChannel((*server)->address()));
  // 16 tensors of 8 x 8192 x 8 under lossless-max: many seconds of codec work on one worker,
  // which notices the deadline between tensors.
  v1::CompressRequest request;
  request.set_codec("lossless-max");
  for (int i = 0; i < 16; ++i) {
    *request.add_tensors() = SyntheticTensor(
        "t" + std::to_string(i), i / 2, i % 2 ? v1::TENSOR_KIND_V : v1::TENSOR_KIND_K, 8, 8192);
  }
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
  v1::CompressResponse response;
  const auto start = Clock::now();
  grpc::Status s = stub->Compress(&context, request, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << s.error_message();
  EXPECT_LT(SecondsSince(start), 5);

  // The one worker gave the call up: the next call is served promptly.
  const auto after = Clock::now();
  ExpectServesGoodRequest(*stub);
  EXPECT_LT(SecondsSince(after), 10);
  // Counted once, under the code the client saw: the server tells a passed deadline from a
  // client that cancelled.
  double deadline = 0, cancelled = 0;
  for (int i = 0; i < 1000 && deadline + cancelled < 1; ++i) {
    if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    deadline = WaitForHandled(**server, "Compress", "DeadlineExceeded", 0);
    cancelled = WaitForHandled(**server, "Compress", "Canceled", 0);
  }
  EXPECT_EQ(deadline, 1) << deadline << " DeadlineExceeded, " << cancelled << " Canceled";
  EXPECT_EQ(cancelled, 0);
}

// --- The server is SIGKILLed under a running `kvcomp compress` --------------------------------

TEST(FaultKillTest, ServerKilledMidCompressCliFailsCleanlyAndWritesNothing) {
  const fs::path dir = fs::temp_directory_path() / ("kvcomp-fault-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "out");
  const std::string cli = KVCOMP_CLI_BINARY;
  std::string out;
  // 8 layers x 8 heads x 1024 tokens x 128 dims of FP16, K and V: 32 MiB in 8 MiB messages,
  // seconds of lossless-max work (about 4 MB/s on one core).
  ASSERT_EQ(
      RunCommand(cli + " generate -q --layers 8 --kv-heads 8 --head-dim 128 --tokens 1024 -o " +
                     (dir / "in").string(),
                 &out),
      0)
      << out;

  auto server = ServerProcess::Start({"--workers", "1"});
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string output = (dir / "out" / "cache.kvc").string();
  const std::string log = (dir / "cli.log").string();
  const pid_t cli_pid = ::fork();
  ASSERT_GE(cli_pid, 0);
  if (cli_pid == 0) {
    std::freopen(log.c_str(), "w", stdout);
    ::dup2(::fileno(stdout), 2);
    ::execl(cli.c_str(), cli.c_str(), "compress", (dir / "in").c_str(), "-o", output.c_str(),
            "--codec", "lossless-max", "--server", (*server)->address().c_str(), "--attempts", "2",
            "--max-message-mib", "8", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // Kill once the server has received a request and before the CLI is done.
  bool mid_call = false;
  for (int i = 0; i < 3000 && !mid_call; ++i) {
    mid_call = ScrapeSum(**server, "grpc_server_msg_received_total") >= 1;
    if (!mid_call) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(mid_call) << "kvcomp compress never reached the server";
  int status = 0;
  ASSERT_EQ(::waitpid(cli_pid, &status, WNOHANG), 0) << "kvcomp compress finished before the kill";
  ASSERT_EQ(::kill((*server)->pid(), SIGKILL), 0);
  const auto killed = Clock::now();
  ASSERT_EQ(::waitpid(cli_pid, &status, 0), cli_pid);
  EXPECT_LT(SecondsSince(killed), 60);

  std::ifstream in(log);
  const std::string said((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_TRUE(WIFEXITED(status)) << said;
  EXPECT_EQ(WEXITSTATUS(status), 3) << said;
  EXPECT_THAT(said, HasSubstr("UNAVAILABLE"));
  std::vector<std::string> left;
  for (const auto& entry : fs::directory_iterator(dir / "out")) {
    left.push_back(entry.path().filename().string());
  }
  EXPECT_THAT(left, ::testing::IsEmpty()) << "partial output left behind";
  fs::remove_all(dir);
}

// --- Malformed protobuf ---------------------------------------------------------------------

grpc::Status RawCall(grpc::Channel* channel, const std::string& method, const std::string& bytes) {
  grpc::GenericStub stub(channel->shared_from_this());
  grpc::Slice slice(bytes);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  grpc::CompletionQueue cq;
  auto call = stub.PrepareUnaryCall(&context, method, request, &cq);
  call->StartCall();
  grpc::Status status;
  call->Finish(&response, &status, reinterpret_cast<void*>(1));
  void* tag = nullptr;
  bool ok = false;
  EXPECT_TRUE(cq.Next(&tag, &ok));
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  return status;
}

// Compress and Decompress parse their own requests (raw methods, server/raw_reply.h): bytes
// that are not the request message are INVALID_ARGUMENT naming it. (gRPC 1.51's callback server
// would answer them with UNIMPLEMENTED and an empty message.) Each is refused, counted and
// harmless.
TEST_F(FaultTest, MalformedProtobufIsRefusedAndTheServerStaysUp) {
  auto channel = UnlimitedChannel(server_->address());
  const std::vector<std::string> garbage = {
      std::string("\xff\xff\xff\xff\xff\xff", 6),  // field 0 / wire type 7 / runaway varint
      std::string("\x0a\x80\x80\x80\x80\x10", 6),  // codec: a length of 2^32, nothing after it
      std::string("\x12\x05\x0a\x01", 4),          // tensors: 5 bytes promised, 2 present
  };
  for (const char* method : {"Compress", "Decompress"}) {
    for (const std::string& bytes : garbage) {
      grpc::Status s =
          RawCall(channel.get(), std::string("/kvcomp.v1.KVCompressor/") + method, bytes);
      EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << method;
      EXPECT_THAT(s.error_message(),
                  HasSubstr(std::string("not a valid kvcomp.v1.") + method + "Request"));
    }
    // Each refusal is counted, none as OK.
    EXPECT_EQ(WaitForHandled(*server_, method, "OK", 0), 0) << method;
    EXPECT_EQ(WaitForHandled(*server_, method, "InvalidArgument", 0), 3) << method;
  }
  // A valid encoding through the same raw path reaches the service (and its own check).
  grpc::Status s = RawCall(channel.get(), "/kvcomp.v1.KVCompressor/Compress", "");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("codec"));
  ExpectServesGoodRequest(*stub_);
}

// --- Truncated streams ----------------------------------------------------------------------

TEST_F(FaultTest, TruncatedFrameInADecompressStreamIsDataLossNamingTheChunk) {
  const v1::Tensor k = SyntheticTensor("k", 0, v1::TENSOR_KIND_K, 2, 256);
  const v1::CompressResponse compressed =
      Frames({TokenBlock(k, 0, 128, 2), TokenBlock(k, 128, 128, 2)});
  ASSERT_FALSE(HasFailure());

  grpc::ClientContext context;
  auto stream = StreamPastChunk0(&context, compressed.tensors(0));
  ASSERT_FALSE(HasFailure());
  v1::DecompressResponse answer;
  v1::DecompressRequest second;
  *second.add_tensors() = compressed.tensors(1);
  const size_t full = second.tensors(0).frame().size();
  second.mutable_tensors(0)->mutable_frame()->resize(full / 2);  // cut off mid-frame
  stream->Write(second);
  EXPECT_FALSE(stream->Read(&answer));
  grpc::Status s = stream->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DATA_LOSS) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("chunk 1"));
  EXPECT_THAT(s.error_message(), HasSubstr("truncated"));
  EXPECT_THAT(s.error_message(), HasSubstr(std::to_string(full)));  // the length it expected
  ExpectServesGoodRequest(*stub_);
}

TEST_F(FaultTest, TruncatedKvcFileFailsDecompressWithoutOutput) {
  const fs::path dir = fs::temp_directory_path() / ("kvcomp-trunc-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string cli = KVCOMP_CLI_BINARY;
  const std::string server = " --server " + server_->address();
  std::string out;
  ASSERT_EQ(RunCommand(cli + " generate -q --layers 2 --kv-heads 2 --head-dim 8 --tokens 64 -o " +
                           (dir / "in").string(),
                       &out),
            0)
      << out;
  const fs::path kvc = dir / "cache.kvc";
  ASSERT_EQ(
      RunCommand(cli + " compress -q " + (dir / "in").string() + " -o " + kvc.string() + server,
                 &out),
      0)
      << out;
  const auto size = fs::file_size(kvc);
  fs::resize_file(kvc, size - 100);  // the last frame loses its tail
  out.clear();
  const fs::path back = dir / "back";
  EXPECT_EQ(RunCommand(cli + " decompress " + kvc.string() + " -o " + back.string() + server, &out),
            2)
      << out;
  EXPECT_THAT(out, HasSubstr("truncated"));
  EXPECT_FALSE(fs::exists(back)) << "partial output left behind";
  for (const auto& entry : fs::directory_iterator(dir)) {
    EXPECT_THAT(entry.path().filename().string(), AnyOf("in", "cache.kvc"));
  }
  fs::remove_all(dir);
  ExpectServesGoodRequest(*stub_);
}

// --- A valid checksum around an impossible size ---------------------------------------------

TEST_F(FaultTest, FrameClaimingAHugeShapeIsRefusedWithoutAllocating) {
  const v1::CompressResponse compressed =
      Frames({SyntheticTensor("k", 0, v1::TENSOR_KIND_K, 2, 64)});
  ASSERT_FALSE(HasFailure());
  const std::string& good = compressed.tensors(0).frame();
  absl::StatusOr<ParsedFrame> parsed =
      ParseFrame(absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(good.data()), good.size()));
  ASSERT_TRUE(parsed.ok()) << parsed.status();

  const int64_t rss_before = ProcStatusKiB(server_->pid(), "VmRSS");
  ASSERT_GT(rss_before, 0);
  // Shapes claiming 2 TiB, 2^56 elements' worth and 64 GiB: each re-written with the same
  // payload, so the length and XXH3 checksum are valid and only the sizes are impossible.
  for (const std::vector<int64_t>& shape : std::vector<std::vector<int64_t>>{
           {8, int64_t{1} << 30, 128}, {int64_t{1} << 28, int64_t{1} << 28, 1}, {2, 1 << 28, 64}}) {
    FrameHeader header = parsed->header;
    header.meta.shape = shape;
    const std::vector<uint8_t> bytes = WriteFrame(header, parsed->streams).value();
    ASSERT_TRUE(ParseFrame(bytes).ok()) << "the crafted frame should pass the checksum";
    v1::DecompressRequest bad;
    v1::CompressedTensor* t = bad.add_tensors();
    *t = compressed.tensors(0);
    t->set_frame(std::string(bytes.begin(), bytes.end()));
    v1::DecompressResponse response;
    grpc::ClientContext context;
    grpc::Status s = stub_->Decompress(&context, bad, &response);
    EXPECT_THAT(s.error_code(),
                AnyOf(grpc::StatusCode::RESOURCE_EXHAUSTED, grpc::StatusCode::INVALID_ARGUMENT,
                      grpc::StatusCode::DATA_LOSS))
        << s.error_message();
    EXPECT_FALSE(s.error_message().empty());
  }
  // A decoder that believed the header would have touched gigabytes.
  const int64_t rss_after = ProcStatusKiB(server_->pid(), "VmRSS");
  EXPECT_LT(rss_after - rss_before, 64 * 1024) << rss_before << " KiB -> " << rss_after << " KiB";
  ExpectServesGoodRequest(*stub_);
}

}  // namespace
}  // namespace kvcomp::testing

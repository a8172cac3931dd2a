// Process lifecycle: --help lists every flag, flags from the environment and a config file,
// SIGTERM and SIGINT end the server with exit 0, draining in-flight calls.
#include <signal.h>
#include <sys/wait.h>

#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "health_client.grpc.pb.h"
#include "tests/server/server_fixture.h"
#include "tests/support/http_get.h"

namespace kvcomp::testing {
namespace {

using ::testing::HasSubstr;

TEST(LifecycleTest, HelpListsEveryFlag) {
  std::string out;
  EXPECT_EQ(RunCommand(ServerProcess::BinaryPath() + " --help", &out), 0);
  for (const char* flag : {"--listen",
                           "--metrics",
                           "--max-message-bytes",
                           "--max-tensor-elements",
                           "--max-decompressed-bytes",
                           "--max-concurrent-calls",
                           "--workers",
                           "--ready-file",
                           "--shutdown-grace-seconds",
                           "--log-level",
                           "--tls-cert",
                           "--tls-key",
                           "--tls-ca",
                           "--tls-require-client-cert",
                           "--keepalive-time-ms",
                           "--keepalive-timeout-ms",
                           "--max-calls-per-connection",
                           "--stream-idle-timeout-seconds",
                           "--max-connection-age-ms",
                           "--max-connection-age-grace-ms",
                           "--config"}) {
    EXPECT_THAT(out, HasSubstr(flag));
  }
  // Each flag names its environment variable.
  EXPECT_THAT(out, HasSubstr("KVCOMP_MAX_CONCURRENT_CALLS"));
  EXPECT_THAT(out, HasSubstr("KVCOMP_TLS_REQUIRE_CLIENT_CERT"));
}

// A compress call of `tensor_elements` over the limit set by `source` is refused: proof
// that the setting took effect.
void ExpectMaxTensorElements(const ServerProcess& server, int limit) {
  auto stub = v1::KVCompressor::NewStub(UnlimitedChannel(server.address()));
  v1::CompressRequest request;
  request.set_codec("zstd(3)");
  *request.add_tensors() = SyntheticTensor("t", 0, v1::TENSOR_KIND_K, 2, limit / 16 + 1);
  v1::CompressResponse response;
  grpc::ClientContext c1;
  EXPECT_EQ(stub->Compress(&c1, request, &response).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  request.mutable_tensors(0)->CopyFrom(SyntheticTensor("t", 0, v1::TENSOR_KIND_K, 2, limit / 16));
  grpc::ClientContext c2;
  EXPECT_TRUE(stub->Compress(&c2, request, &response).ok());
}

TEST(LifecycleTest, FlagsComeFromTheEnvironment) {
  ASSERT_EQ(::setenv("KVCOMP_MAX_TENSOR_ELEMENTS", "1600", 1), 0);
  auto server = ServerProcess::Start();
  ::unsetenv("KVCOMP_MAX_TENSOR_ELEMENTS");
  ASSERT_TRUE(server.ok()) << server.status();
  ExpectMaxTensorElements(**server, 1600);
}

TEST(LifecycleTest, FlagsComeFromAConfigFileAndTheCommandLineWins) {
  const std::filesystem::path file =
      std::filesystem::temp_directory_path() / ("kvcomp-config-" + std::to_string(::getpid()));
  {
    std::ofstream out(file);
    out << "# kvcomp-server settings\nmax-tensor-elements = 3200\nworkers = 1\n";
  }
  auto from_file = ServerProcess::Start({"--config", file.string()});
  ASSERT_TRUE(from_file.ok()) << from_file.status();
  ExpectMaxTensorElements(**from_file, 3200);
  auto overridden =
      ServerProcess::Start({"--config", file.string(), "--max-tensor-elements", "800"});
  ASSERT_TRUE(overridden.ok()) << overridden.status();
  ExpectMaxTensorElements(**overridden, 800);
  std::filesystem::remove(file);
}

TEST(LifecycleTest, MissingConfigFileFailsToStart) {
  auto server = ServerProcess::Start({"--config", "/nonexistent/kvcomp.toml"});
  EXPECT_FALSE(server.ok());
}

// SIGTERM while 20 calls are in flight: health turns NOT_SERVING, new calls are refused, all
// 20 finish OK within the grace, and the process exits 0.
TEST(LifecycleTest, SigtermDrainsTwentyInFlightCalls) {
  constexpr int kCalls = 20;
  auto server = ServerProcess::Start({"--workers", "2", "--shutdown-grace-seconds", "120"});
  ASSERT_TRUE(server.ok()) << server.status();
  auto channel = UnlimitedChannel((*server)->address());
  auto stub = v1::KVCompressor::NewStub(channel);

  // A health watch opened before the signal sees the change to NOT_SERVING.
  auto health = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext watch_context;
  grpc::health::v1::HealthCheckRequest watch_request;
  auto watch = health->Watch(&watch_context, watch_request);
  grpc::health::v1::HealthCheckResponse seen;
  ASSERT_TRUE(watch->Read(&seen));
  ASSERT_EQ(seen.status(), grpc::health::v1::HealthCheckResponse::SERVING);

  // Each call: the lossless sweep over one layer, a fraction of a second to a second of work;
  // 20 of them queue on 2 workers.
  v1::AnalyzeRequest request;
  request.add_sweeps("lossless");
  *request.add_tensors() = SyntheticTensor("k", 0, v1::TENSOR_KIND_K, 8, 1024);
  *request.add_tensors() = SyntheticTensor("v", 0, v1::TENSOR_KIND_V, 8, 1024);
  std::vector<grpc::Status> statuses(kCalls);
  std::vector<int> codecs(kCalls, 0);
  std::vector<std::thread> calls;
  for (int i = 0; i < kCalls; ++i) {
    calls.emplace_back([&, i] {
      grpc::ClientContext context;
      v1::AnalyzeResponse response;
      statuses[i] = stub->Analyze(&context, request, &response);
      codecs[i] = response.codecs_size();
    });
  }
  // All 20 started (plus the watch), none finished.
  bool all_in_flight = false;
  for (int i = 0; i < 2000 && !all_in_flight; ++i) {
    all_in_flight = ScrapeSum(**server, "kvcomp_in_flight_calls") == kCalls + 1;
    if (!all_in_flight) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_TRUE(all_in_flight);
  EXPECT_EQ(ScrapeSum(**server, "grpc_server_handled_total"), 0) << "calls too short for the test";

  const auto signalled = std::chrono::steady_clock::now();
  ASSERT_EQ(::kill((*server)->pid(), SIGTERM), 0);
  ASSERT_TRUE(watch->Read(&seen));
  EXPECT_EQ(seen.status(), grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  watch_context.TryCancel();

  // New calls are refused while the old ones drain (a fresh connection, too).
  grpc::Status refused;
  for (int i = 0; i < 500; ++i) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    v1::CompressRequest small;
    small.set_codec("zstd(3)");
    *small.add_tensors() = SyntheticTensor("late", 0, v1::TENSOR_KIND_V, 2, 32);
    v1::CompressResponse response;
    refused = v1::KVCompressor::NewStub(UnlimitedChannel((*server)->address()))
                  ->Compress(&context, small, &response);
    if (!refused.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_FALSE(refused.ok()) << "a new call was served after SIGTERM";

  for (std::thread& t : calls) t.join();
  const double drained =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - signalled).count();
  int ok = 0;
  for (int i = 0; i < kCalls; ++i) {
    EXPECT_TRUE(statuses[i].ok()) << "call " << i << ": " << statuses[i].error_code() << " "
                                  << statuses[i].error_message();
    if (statuses[i].ok() && codecs[i] > 1) ++ok;
  }
  EXPECT_EQ(ok, kCalls);
  absl::StatusOr<int> exit_status = (*server)->Stop(/*timeout_seconds=*/120);
  ASSERT_TRUE(exit_status.ok()) << exit_status.status();
  ASSERT_TRUE(WIFEXITED(*exit_status)) << "wait status " << *exit_status;
  EXPECT_EQ(WEXITSTATUS(*exit_status), 0);
  std::printf("drain: %d of %d in-flight calls completed OK, %.2f s after SIGTERM\n", ok, kCalls,
              drained);
}

TEST(LifecycleTest, BadFlagValueFailsToStart) {
  auto server = ServerProcess::Start({"--workers", "0"});
  EXPECT_FALSE(server.ok());
}

// A Unix socket: plaintext without --allow-plaintext (only this host can reach it), the ready
// file names the socket, and a client served through it gets its calls answered.
TEST(LifecycleTest, ServesOnAUnixSocket) {
  std::string dir = "/tmp/kvcomp-sock.XXXXXX";  // short: a socket path holds at most 107 bytes
  ASSERT_NE(::mkdtemp(dir.data()), nullptr);
  const std::string address = "unix:" + dir + "/kvcomp.sock";
  {
    auto server = ServerProcess::Start({"--listen", address});
    ASSERT_TRUE(server.ok()) << server.status();
    EXPECT_EQ((*server)->address(), address);
    ExpectServesGoodRequest(*v1::KVCompressor::NewStub(UnlimitedChannel(address)));
    absl::StatusOr<int> status = (*server)->Stop(/*timeout_seconds=*/20);
    ASSERT_TRUE(status.ok()) << status.status();
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << "wait status " << *status;
  }
  std::filesystem::remove_all(dir);
}

TEST(LifecycleTest, SigtermExitsZero) {
  auto server = ServerProcess::Start({"--shutdown-grace-seconds", "5"});
  ASSERT_TRUE(server.ok()) << server.status();
  ExpectServesGoodRequest(*v1::KVCompressor::NewStub(UnlimitedChannel((*server)->address())));
  absl::StatusOr<int> status = (*server)->Stop(/*timeout_seconds=*/20);
  ASSERT_TRUE(status.ok()) << status.status();
  ASSERT_TRUE(WIFEXITED(*status)) << "wait status " << *status;
  EXPECT_EQ(WEXITSTATUS(*status), 0);
}

// Issue 25: with only an idle client connection open, SIGTERM took 5.7 s: gRPC's Shutdown waits
// for the client to close the connection after its GOAWAY, which a client that is not polling
// takes seconds to do. With no call left, the server no longer waits for it.
TEST(LifecycleTest, SigtermDoesNotWaitForAnIdleClientConnection) {
  auto server = ServerProcess::Start({"--shutdown-grace-seconds", "10"});
  ASSERT_TRUE(server.ok()) << server.status();
  auto channel = UnlimitedChannel((*server)->address());
  ExpectServesGoodRequest(*v1::KVCompressor::NewStub(channel));  // connected, then idle
  const auto signalled = std::chrono::steady_clock::now();
  absl::StatusOr<int> status = (*server)->Stop(/*timeout_seconds=*/20);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - signalled).count();
  ASSERT_TRUE(status.ok()) << status.status();
  ASSERT_TRUE(WIFEXITED(*status)) << "wait status " << *status;
  EXPECT_EQ(WEXITSTATUS(*status), 0);
  EXPECT_LT(seconds, 1.5) << "SIGTERM to exit with an idle connection open";
}

struct ShutdownOutcome {
  grpc::Status call_status;
  v1::AnalyzeResponse response;
  absl::StatusOr<int> exit_status;
  double seconds_after_signal = 0;
};

// Starts an Analyze of `sweep` over a synthetic 4-layer cache, waits until the server has
// started but not finished it, sends SIGTERM, and collects what happened.
ShutdownOutcome SigtermDuringAnalyze(const std::string& sweep, const std::string& grace) {
  ShutdownOutcome outcome{grpc::Status(), {}, absl::UnknownError("not run"), 0};
  auto server = ServerProcess::Start({"--workers", "1", "--shutdown-grace-seconds", grace});
  EXPECT_TRUE(server.ok()) << server.status();
  if (!server.ok()) return outcome;
  auto stub = v1::KVCompressor::NewStub(UnlimitedChannel((*server)->address()));
  v1::AnalyzeRequest request;
  request.add_sweeps(sweep);
  for (int layer = 0; layer < 4; ++layer) {
    *request.add_tensors() = SyntheticTensor("k", layer, v1::TENSOR_KIND_K, 8, 2048);
    *request.add_tensors() = SyntheticTensor("v", layer, v1::TENSOR_KIND_V, 8, 2048);
  }
  std::thread call([&] {
    grpc::ClientContext context;
    outcome.call_status = stub->Analyze(&context, request, &outcome.response);
  });

  bool in_flight = false;
  for (int i = 0; i < 1000 && !in_flight; ++i) {
    auto scrape = HttpGet((*server)->metrics_address(), "/metrics");
    if (scrape.ok()) {
      auto m = PromMetrics::Parse(scrape->body);
      if (m.ok()) {
        in_flight = m->Sum("grpc_server_started_total", {{"grpc_method", "Analyze"}}) == 1 &&
                    m->Sum("grpc_server_handled_total", {{"grpc_method", "Analyze"}}) == 0;
      }
    }
    if (!in_flight) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_TRUE(in_flight) << "the Analyze call never showed up as running";
  const auto signalled = std::chrono::steady_clock::now();
  outcome.exit_status = (*server)->Stop(/*timeout_seconds=*/120);
  call.join();
  outcome.seconds_after_signal =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - signalled).count();
  return outcome;
}

void ExpectExitedZero(const absl::StatusOr<int>& exit_status) {
  ASSERT_TRUE(exit_status.ok()) << exit_status.status();
  ASSERT_TRUE(WIFEXITED(*exit_status)) << "wait status " << *exit_status;
  EXPECT_EQ(WEXITSTATUS(*exit_status), 0);
}

// Within the grace period an in-flight call still completes OK; then the process exits 0.
TEST(LifecycleTest, SigtermLetsAnInFlightCallFinish) {
  const ShutdownOutcome out = SigtermDuringAnalyze("lossless", "60");
  EXPECT_TRUE(out.call_status.ok())
      << out.call_status.error_code() << ": " << out.call_status.error_message();
  EXPECT_GT(out.response.codecs_size(), 1);
  ExpectExitedZero(out.exit_status);
}

// Past the grace period the call is cancelled (the worker notices between tensors), and the
// process still exits 0, long before the work would have finished (over a minute here).
TEST(LifecycleTest, SigtermCancelsCallsPastTheGrace) {
  const ShutdownOutcome out = SigtermDuringAnalyze("default", "0.5");
  EXPECT_FALSE(out.call_status.ok());
  ExpectExitedZero(out.exit_status);
  EXPECT_LT(out.seconds_after_signal, 30);
}

TEST(LifecycleTest, SigintExitsZero) {
  auto server = ServerProcess::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_EQ(::kill((*server)->pid(), SIGINT), 0);
  absl::StatusOr<int> status = (*server)->Stop(/*timeout_seconds=*/20);
  ASSERT_TRUE(status.ok()) << status.status();
  ASSERT_TRUE(WIFEXITED(*status)) << "wait status " << *status;
  EXPECT_EQ(WEXITSTATUS(*status), 0);
}

}  // namespace
}  // namespace kvcomp::testing

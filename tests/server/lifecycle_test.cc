// Process lifecycle: --help lists every flag, SIGTERM and SIGINT end the server with exit 0.
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/server/server_fixture.h"
#include "tests/support/http_get.h"

namespace kvcomp::testing {
namespace {

using ::testing::HasSubstr;

TEST(LifecycleTest, HelpListsEveryFlag) {
  const std::string command = ServerProcess::BinaryPath() + " --help";
  FILE* pipe = ::popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  const int status = ::pclose(pipe);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  for (const char* flag : {"--listen", "--metrics", "--max-message-bytes", "--workers",
                           "--ready-file", "--shutdown-grace-seconds", "--log-level"}) {
    EXPECT_THAT(out, HasSubstr(flag));
  }
}

TEST(LifecycleTest, BadFlagValueFailsToStart) {
  auto server = ServerProcess::Start({"--workers", "0"});
  EXPECT_FALSE(server.ok());
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

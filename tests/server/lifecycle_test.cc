// Process lifecycle: --help lists every flag, SIGTERM and SIGINT end the server with exit 0.
#include <signal.h>
#include <sys/wait.h>

#include <cstdio>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/server/server_fixture.h"

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

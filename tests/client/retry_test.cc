// The client's retry policy, with no server: which failures are retried, and how long each
// retry waits (client/retry.h).
#include "client/retry.h"

#include <gtest/gtest.h>

namespace kvcomp::client {
namespace {

TEST(RetryTest, BackoffGrowsToItsCapWithJitterAroundIt) {
  const RetryPolicy p;  // 100 ms doubling to 2 s, jitter 0.2
  auto ms = [&](int retry, double u) { return absl::ToDoubleMilliseconds(Backoff(p, retry, u)); };
  EXPECT_DOUBLE_EQ(ms(1, 0.5), 100);
  EXPECT_DOUBLE_EQ(ms(2, 0.5), 200);
  EXPECT_DOUBLE_EQ(ms(3, 0.5), 400);
  EXPECT_DOUBLE_EQ(ms(6, 0.5), 2000);  // 3200 capped
  EXPECT_DOUBLE_EQ(ms(30, 0.5), 2000);
  EXPECT_NEAR(ms(1, 0), 80, 1e-9);  // u in [0, 1): [0.8, 1.2) of the wait
  EXPECT_NEAR(ms(3, 0.999999), 480, 1e-3);
  for (int i = 0; i < 1000; ++i) {
    const double u = Uniform();
    ASSERT_GE(u, 0);
    ASSERT_LT(u, 1);
  }
}

TEST(RetryTest, OnlyUnavailableIsRetriedAndOnlyWhileAttemptsRemain) {
  ClientOptions o;  // 4 attempts
  const grpc::Status unavailable(grpc::StatusCode::UNAVAILABLE, "down");
  EXPECT_TRUE(ShouldRetry(unavailable, 1, o));
  EXPECT_TRUE(ShouldRetry(unavailable, 3, o));
  EXPECT_FALSE(ShouldRetry(unavailable, 4, o));
  for (grpc::StatusCode code : {grpc::StatusCode::OK, grpc::StatusCode::DEADLINE_EXCEEDED,
                                grpc::StatusCode::INVALID_ARGUMENT, grpc::StatusCode::CANCELLED,
                                grpc::StatusCode::RESOURCE_EXHAUSTED}) {
    EXPECT_FALSE(ShouldRetry(grpc::Status(code, ""), 1, o)) << code;
  }
  o.retry.max_attempts = 1;
  EXPECT_FALSE(ShouldRetry(unavailable, 1, o));
}

TEST(RetryTest, WithRetryRepeatsUnavailableThenGivesUp) {
  ClientOptions o;
  o.retry.initial_backoff = o.retry.max_backoff = absl::Milliseconds(1);
  int calls = 0;
  grpc::Status s = WithRetry(o, [&](grpc::ClientContext*) {
    ++calls;
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "down");
  });
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(calls, 4);
  calls = 0;
  s = WithRetry(o, [&](grpc::ClientContext*) {
    return ++calls < 3 ? grpc::Status(grpc::StatusCode::UNAVAILABLE, "") : grpc::Status::OK;
  });
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(calls, 3);
}

TEST(RetryTest, StatusesKeepTheirCodeAndNameTheMethod) {
  const absl::Status s =
      FromGrpc(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "unknown stage"), "Compress");
  EXPECT_EQ(s, absl::InvalidArgumentError("Compress: unknown stage"));
  EXPECT_TRUE(FromGrpc(grpc::Status::OK, "Compress").ok());
  ClientOptions o;
  o.max_message_bytes = 10;
  v1::CompressRequest big;
  big.set_codec("zstd(3) and then some");
  EXPECT_EQ(CheckRequestSize(big, o, "Compress").code(), absl::StatusCode::kResourceExhausted);
  o.max_message_bytes = 1000;
  EXPECT_TRUE(CheckRequestSize(big, o, "Compress").ok());
}

}  // namespace
}  // namespace kvcomp::client

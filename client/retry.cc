#include "client/retry.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>

namespace kvcomp::client {

absl::Status FromGrpc(const grpc::Status& s, absl::string_view method) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      absl::StrCat(method, ": ", s.error_message()));
}

void SetDeadline(grpc::ClientContext* ctx, const ClientOptions& o) {
  ctx->set_deadline(std::chrono::system_clock::now() + absl::ToChronoNanoseconds(o.timeout));
}

absl::Duration Backoff(const RetryPolicy& p, int retry, double u) {
  double ms = absl::ToDoubleMilliseconds(p.initial_backoff) * std::pow(p.multiplier, retry - 1);
  ms = std::min(ms, absl::ToDoubleMilliseconds(p.max_backoff));
  return absl::Milliseconds(ms * (1 + p.jitter * (2 * u - 1)));
}

double Uniform() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::uniform_real_distribution<double>(0, 1)(rng);
}

bool ShouldRetry(const grpc::Status& s, int attempt, const ClientOptions& o) {
  return s.error_code() == grpc::StatusCode::UNAVAILABLE && attempt < o.retry.max_attempts;
}

absl::Status CheckRequestSize(const google::protobuf::Message& req, const ClientOptions& o,
                              absl::string_view method) {
  const size_t size = req.ByteSizeLong();
  if (size > static_cast<size_t>(o.max_message_bytes)) {
    return absl::ResourceExhaustedError(
        absl::StrCat(method, ": request of ", size, " bytes is above the client's limit of ",
                     o.max_message_bytes, " bytes (max message size)"));
  }
  return absl::OkStatus();
}

}  // namespace kvcomp::client

// Deadlines and retries of the client library's calls (ClientOptions::timeout and ::retry):
// each attempt has a fresh context and the whole timeout; only UNAVAILABLE is retried (nothing
// else is safe to repeat blindly), after Backoff(); a stream is repeated from its first chunk.
// Internal to the client library: kvcomp_client.h is its interface.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/kvcomp_client.h"
#include "core/kvcomp/internal/status_macros.h"

namespace kvcomp::client {

// `s` as an absl::Status with the same code (the numeric codes are gRPC's), its message
// prefixed with "`method`: ".
absl::Status FromGrpc(const grpc::Status& s, absl::string_view method);

// The deadline of one attempt: options.timeout from now.
void SetDeadline(grpc::ClientContext* ctx, const ClientOptions& o);

// The wait before retry number `retry` (1 for the first), `u` uniform in [0, 1): see
// RetryPolicy.
absl::Duration Backoff(const RetryPolicy& p, int retry, double u);

// Uniform in [0, 1), from the calling thread's own generator.
double Uniform();

// True when attempt number `attempt` (1 for the first) ended in UNAVAILABLE and the policy
// allows another.
bool ShouldRetry(const grpc::Status& s, int attempt, const ClientOptions& o);

// RESOURCE_EXHAUSTED, before anything is sent, when `req` is above options.max_message_bytes.
absl::Status CheckRequestSize(const google::protobuf::Message& req, const ClientOptions& o,
                              absl::string_view method);

// Runs `call(ctx)` with a fresh context per attempt, retrying on UNAVAILABLE.
template <typename Fn>
grpc::Status WithRetry(const ClientOptions& o, Fn call) {
  for (int attempt = 1;; ++attempt) {
    grpc::ClientContext ctx;
    SetDeadline(&ctx, o);
    grpc::Status s = call(&ctx);
    if (!ShouldRetry(s, attempt, o)) return s;
    absl::SleepFor(Backoff(o.retry, attempt, Uniform()));
  }
}

// Sends chunk requests and hands each answer on, in order: one unary call for a single chunk,
// else one stream (`method` + "Stream"). Either way retried on UNAVAILABLE, from the start.
template <typename Req, typename Resp>
struct Exchange {
  const ClientOptions* options;
  std::string method;
  std::function<grpc::Status(grpc::ClientContext*, const Req&, Resp*)> unary;
  std::function<std::unique_ptr<grpc::ClientReaderWriter<Req, Resp>>(grpc::ClientContext*)> open;
  size_t chunks = 0;
  std::function<Req(size_t)> make;                  // builds chunk i
  std::function<void()> reset;                      // before each attempt
  std::function<absl::Status(size_t, Resp&)> take;  // consumes the answer to chunk i

  absl::Status Run() const {
    if (chunks <= 1) {
      const Req req = make(0);
      KV_RETURN_IF_ERROR(CheckRequestSize(req, *options, method));
      Resp resp;
      KV_RETURN_IF_ERROR(FromGrpc(WithRetry(*options,
                                            [&](grpc::ClientContext* ctx) {
                                              resp.Clear();
                                              return unary(ctx, req, &resp);
                                            }),
                                  method));
      reset();
      return take(0, resp);
    }
    const std::string stream_method = method + "Stream";
    absl::Status local;
    size_t answered = 0;
    const grpc::Status s = WithRetry(*options, [&](grpc::ClientContext* ctx) {
      reset();
      local = absl::OkStatus();
      answered = 0;
      auto stream = open(ctx);
      for (size_t i = 0; i < chunks; ++i) {
        const Req req = make(i);
        local = CheckRequestSize(req, *options, stream_method);
        if (local.ok()) {
          if (!stream->Write(req)) break;
          Resp resp;
          if (!stream->Read(&resp)) break;
          local = take(i, resp);
        }
        if (!local.ok()) {
          ctx->TryCancel();
          break;
        }
        ++answered;
        if (options->on_chunk) options->on_chunk(answered, chunks);
      }
      stream->WritesDone();
      const grpc::Status st = stream->Finish();
      // A local failure is final: not UNAVAILABLE, so not retried.
      return local.ok() ? st : grpc::Status(grpc::StatusCode::CANCELLED, "");
    });
    KV_RETURN_IF_ERROR(local);
    KV_RETURN_IF_ERROR(FromGrpc(s, stream_method));
    if (answered != chunks) {
      return absl::DataLossError(
          absl::StrCat(stream_method, ": server answered ", answered, " of ", chunks, " chunks"));
    }
    return absl::OkStatus();
  }
};

}  // namespace kvcomp::client

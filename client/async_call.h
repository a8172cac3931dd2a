// The client library's asynchronous calls (Client::CompressAsync, DecompressAsync): a unary
// call on gRPC's callback API, retried as the synchronous calls are (retry.h), and the count
// of unfinished calls that ~Client waits for. Internal to the client library.
#pragma once

#include <functional>
#include <memory>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "client/retry.h"

namespace kvcomp::client {

// Counts a Client's unfinished async calls. ~Client waits for zero: a call's last steps
// (destroying its ClientContext, after the user's callback) must not race the channel's end.
class InFlightCalls {
 public:
  // Held by one call from its start until its last member is gone.
  class Ticket {
   public:
    explicit Ticket(InFlightCalls* calls) : calls_(calls) {
      absl::MutexLock lock(&calls_->mu_);
      ++calls_->count_;
    }
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;
    ~Ticket() {
      absl::MutexLock lock(&calls_->mu_);
      --calls_->count_;
    }

   private:
    InFlightCalls* calls_;
  };
  void WaitIdle() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](int* count) { return *count == 0; }, &count_));
  }

 private:
  absl::Mutex mu_;
  int count_ ABSL_GUARDED_BY(mu_) = 0;
};

// One asynchronous unary call with retries: `start` issues an attempt on the callback API,
// `finish` gets the final status and response. Owns itself; deleted after `finish`.
template <typename Req, typename Resp>
class AsyncCall {
 public:
  using Start = std::function<void(grpc::ClientContext*, const Req*, Resp*,
                                   std::function<void(grpc::Status)>)>;
  using Finish = std::function<void(const grpc::Status&, Resp&)>;
  static void Run(InFlightCalls* calls, const ClientOptions& o, Req req, Start start,
                  Finish finish) {
    (new AsyncCall(calls, o, std::move(req), std::move(start), std::move(finish)))->Attempt();
  }

 private:
  AsyncCall(InFlightCalls* calls, const ClientOptions& o, Req req, Start start, Finish finish)
      : ticket_(calls),
        options_(o),
        req_(std::move(req)),
        start_(std::move(start)),
        finish_(std::move(finish)) {}
  // Touches nothing after start_: the callback may already have deleted this.
  void Attempt() {
    ++attempt_;
    ctx_ = std::make_unique<grpc::ClientContext>();
    SetDeadline(ctx_.get(), options_);
    resp_.Clear();
    start_(ctx_.get(), &req_, &resp_, [this](grpc::Status s) {
      if (ShouldRetry(s, attempt_, options_)) {
        const absl::Duration wait = Backoff(options_.retry, attempt_, Uniform());
        // Retries are rare: a short-lived thread waits out the backoff, off gRPC's threads.
        std::thread([this, wait] {
          absl::SleepFor(wait);
          Attempt();
        }).detach();
        return;
      }
      finish_(s, resp_);
      delete this;
    });
  }
  const InFlightCalls::Ticket ticket_;  // first member: released after all the others
  const ClientOptions options_;
  Req req_;
  Resp resp_;
  std::unique_ptr<grpc::ClientContext> ctx_;
  int attempt_ = 0;
  Start start_;
  Finish finish_;
};

// Runs `work` on a thread of its own (a streamed async call runs the synchronous one there).
// `work` and what it owns are destroyed before the ticket goes, so ~Client waits for them.
void RunDetached(InFlightCalls* calls, std::function<void()> work);

// The answer to a one-chunk async call, read through the same plan as the synchronous path.
template <typename Plan, typename Resp, typename Done>
void FinishOneChunk(const grpc::Status& s, const char* method, Plan& plan, Resp& resp, Done& done) {
  if (!s.ok()) {
    done(FromGrpc(s, method));
    return;
  }
  plan.Reset();
  if (absl::Status taken = plan.Take(0, resp); !taken.ok()) {
    done(taken);
  } else {
    done(plan.Result());
  }
}

}  // namespace kvcomp::client

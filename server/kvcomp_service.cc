#include "server/kvcomp_service.h"

#include <spdlog/spdlog.h>

#include <chrono>

#include "absl/strings/str_cat.h"
#include "server/raw_reply.h"
#include "server/tensor_convert.h"

namespace kvcomp::server {

namespace {

const grpc::Status kTooManyCalls(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                 "server is at its concurrent call limit (--max-concurrent-calls)");
const grpc::Status kShuttingDown(grpc::StatusCode::UNAVAILABLE, "server is shutting down");

// A lock-step bidi stream: read a chunk, run it on the pool, write its answer, read the next.
// The client half-closing ends the stream with OK; a failed chunk ends it with its status.
template <typename Request, typename Response>
class StreamReactor final : public grpc::ServerBidiReactor<Request, Response> {
 public:
  using Run = absl::Status (*)(const Request&, Response*, const OpsOptions&);

  StreamReactor(KVCompressorService* service, grpc::CallbackServerContext* context,
                const char* method, Run run)
      : service_(service), context_(context), method_(method), run_(run) {
    if (!service_->AcquireCall()) {
      this->Finish(kTooManyCalls);
      return;
    }
    holds_slot_ = true;
    this->StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client is done sending (or the call is gone)
      this->Finish(context_->IsCancelled()
                       ? grpc::Status(grpc::StatusCode::CANCELLED, "stream cancelled")
                       : grpc::Status::OK);
      return;
    }
    const bool queued = service_->pool()->Submit([this] {
      response_.Clear();
      absl::Status status = run_(request_, &response_, service_->OpsFor(context_));
      if (!status.ok()) {
        spdlog::debug("{} chunk {} from {} failed: {}", method_, chunks_, context_->peer(),
                      status.ToString());
        this->Finish(ToGrpcStatus(Annotate(status, absl::StrCat("chunk ", chunks_))));
        return;
      }
      ++chunks_;
      request_.Clear();  // free the chunk before its answer goes out
      this->StartWrite(&response_);
    });
    if (!queued) this->Finish(kShuttingDown);
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      this->Finish(grpc::Status(grpc::StatusCode::CANCELLED, "stream write failed"));
      return;
    }
    response_.Clear();
    this->StartRead(&request_);
  }

  void OnDone() override {
    if (holds_slot_) service_->ReleaseCall();
    delete this;
  }

 private:
  KVCompressorService* service_;
  grpc::CallbackServerContext* context_;
  const char* method_;
  Run run_;
  bool holds_slot_ = false;
  uint64_t chunks_ = 0;
  Request request_;
  Response response_;
};

}  // namespace

KVCompressorService::KVCompressorService(WorkerPool* pool, Options options)
    : pool_(pool), options_(options) {}

OpsOptions KVCompressorService::OpsFor(grpc::CallbackServerContext* context) const {
  OpsOptions ops;
  ops.decode_limits.max_decoded_bytes = options_.max_decoded_bytes;
  ops.max_tensor_elements = options_.max_tensor_elements;
  ops.observer = options_.observer;
  ops.cancelled = [context] { return context->IsCancelled(); };
  ops.past_deadline = [context] { return context->deadline() <= std::chrono::system_clock::now(); };
  return ops;
}

bool KVCompressorService::AcquireCall() {
  const int limit = options_.max_concurrent_calls;
  if (limit <= 0) return true;
  if (active_calls_.fetch_add(1) >= limit) {
    active_calls_.fetch_sub(1);
    return false;
  }
  return true;
}

void KVCompressorService::ReleaseCall() {
  if (options_.max_concurrent_calls > 0) active_calls_.fetch_sub(1);
}

template <typename Request, typename Response>
grpc::ServerUnaryReactor* KVCompressorService::Dispatch(
    const char* method, grpc::CallbackServerContext* context, const Request* request,
    Response* response, absl::Status (*run)(const Request&, Response*, const OpsOptions&)) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (!AcquireCall()) {
    reactor->Finish(kTooManyCalls);
    return reactor;
  }
  auto task = [this, method, context, request, response, run, reactor] {
    absl::Status status = run(*request, response, OpsFor(context));
    if (!status.ok()) {
      spdlog::debug("{} from {} failed: {}", method, context->peer(), status.ToString());
      response->Clear();
    }
    ReleaseCall();
    reactor->Finish(ToGrpcStatus(status));
  };
  if (!pool_->Submit(std::move(task))) {
    ReleaseCall();
    reactor->Finish(kShuttingDown);
  }
  return reactor;
}

grpc::ServerUnaryReactor* KVCompressorService::Compress(grpc::CallbackServerContext* context,
                                                        const grpc::ByteBuffer* request,
                                                        grpc::ByteBuffer* response) {
  return Dispatch("Compress", context, request, response, &RunCompressRaw);
}

grpc::ServerUnaryReactor* KVCompressorService::Decompress(grpc::CallbackServerContext* context,
                                                          const grpc::ByteBuffer* request,
                                                          grpc::ByteBuffer* response) {
  return Dispatch("Decompress", context, request, response, &RunDecompressRaw);
}

grpc::ServerUnaryReactor* KVCompressorService::Analyze(grpc::CallbackServerContext* context,
                                                       const v1::AnalyzeRequest* request,
                                                       v1::AnalyzeResponse* response) {
  return Dispatch("Analyze", context, request, response, &RunAnalyze);
}

grpc::ServerBidiReactor<v1::CompressRequest, v1::CompressResponse>*
KVCompressorService::CompressStream(grpc::CallbackServerContext* context) {
  return new StreamReactor<v1::CompressRequest, v1::CompressResponse>(
      this, context, "CompressStream", &RunCompress);
}

grpc::ServerBidiReactor<v1::DecompressRequest, v1::DecompressResponse>*
KVCompressorService::DecompressStream(grpc::CallbackServerContext* context) {
  return new StreamReactor<v1::DecompressRequest, v1::DecompressResponse>(
      this, context, "DecompressStream", &RunDecompress);
}

}  // namespace kvcomp::server

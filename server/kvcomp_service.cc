#include "server/kvcomp_service.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <mutex>
#include <string>

#include "absl/strings/str_cat.h"
#include "server/raw_reply.h"
#include "server/status_convert.h"

namespace kvcomp::server {

namespace {

const grpc::Status kTooManyCalls(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                 "server is at its concurrent call limit (--max-concurrent-calls)");
const grpc::Status kShuttingDown(grpc::StatusCode::UNAVAILABLE, "server is shutting down");
constexpr char kShmSessionKey[] = "kvcomp-shm-session";

std::string ShmToken(grpc::CallbackServerContext* context) {
  const auto& metadata = context->client_metadata();
  auto it = metadata.find(kShmSessionKey);
  return it == metadata.end() ? std::string() : std::string(it->second.data(), it->second.size());
}

uint64_t ReplyBytes(const grpc::ByteBuffer& reply) { return reply.Length(); }
uint64_t ReplyBytes(const google::protobuf::Message& reply) { return reply.ByteSizeLong(); }

// A lock-step bidi stream: read a chunk, run it on the pool, write its answer, read the next.
// The client half-closing ends the stream with OK; a failed chunk ends it with its status.
// While it waits on its client (a read or a write outstanding) the service's IdleWatchdog
// times it: an idle reader is finished with DEADLINE_EXCEEDED saying why, and a write the
// client never reads is cancelled, which frees the answer it holds.
//
// Lifetime: gRPC holds one reference until OnDone, the watchdog one while OnIdle runs; the
// last Unref deletes. `mu_` is recursive because gRPC may run a reaction inline in the thread
// that started an operation.
// Chunks are raw bytes, parsed and answered by the raw runners (server/raw_reply.h), so that a
// chunk's received bytes, its parsed form and its answer are never all held at once.
class StreamReactor final : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>,
                            public IdleWatchdog::Watched {
 public:
  using Run = absl::Status (*)(grpc::ByteBuffer*, grpc::ByteBuffer*, const OpsOptions&);

  StreamReactor(KVCompressorService* service, grpc::CallbackServerContext* context,
                const char* method, Run run)
      : service_(service), context_(context), method_(method), run_(run) {
    if (!service_->AcquireCall()) {
      finished_ = true;
      this->Finish(kTooManyCalls);
      return;
    }
    std::lock_guard<std::recursive_mutex> lock(mu_);
    holds_slot_ = true;
    StartReadLocked();
  }

  void OnReadDone(bool ok) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    service_->watchdog()->Disarm(this);
    waiting_ = Waiting::kNothing;
    if (finished_) return;  // the watchdog ended the stream
    if (!ok) {              // the client is done sending (or the call is gone)
      FinishLocked(service_->FinalStatus(context_, absl::OkStatus(), method_, 0));
      return;
    }
    const bool queued = service_->pool()->Submit([this] { RunChunk(); });
    if (!queued) FinishLocked(kShuttingDown);
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    service_->watchdog()->Disarm(this);
    waiting_ = Waiting::kNothing;
    if (finished_) return;
    if (!ok) {
      FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED,
                                idle_write_ ? IdleMessage("read the answer to chunk ")
                                            : std::string("stream write failed")));
      return;
    }
    response_.Clear();
    StartReadLocked();
  }

  void OnIdle() override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    if (done_ || finished_) return;
    if (waiting_ == Waiting::kRead) {
      FinishLocked(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, IdleMessage("send chunk ")));
    } else if (waiting_ == Waiting::kWrite) {
      // The client reads nothing, so it would never see a status; cancelling frees the call
      // (the write then fails, and OnWriteDone finishes).
      idle_write_ = true;
      context_->TryCancel();
    }
  }

  void OnDone() override {
    {
      std::lock_guard<std::recursive_mutex> lock(mu_);
      done_ = true;
    }
    service_->watchdog()->Disarm(this);
    {
      std::lock_guard<std::recursive_mutex> lock(mu_);
      ReleaseSlotLocked();
    }
    Unref();
  }

  void Ref() override { refs_.fetch_add(1); }
  void Unref() override {
    if (refs_.fetch_sub(1) == 1) delete this;
  }

 private:
  enum class Waiting { kNothing, kRead, kWrite };

  void RunChunk() {
    response_.Clear();
    OpsOptions ops = service_->OpsFor(context_);
    ops.trim_after_parse = true;
    absl::Status status = run_(&request_, &response_, ops);
    request_.Clear();  // the chunk is freed before its answer goes out (run_ already did)
    if (!status.ok()) {
      spdlog::debug("{} chunk {} from {} failed: {}", method_, chunks_, context_->peer(),
                    status.ToString());
      status = Annotate(status, absl::StrCat("chunk ", chunks_));
    }
    grpc::Status final = service_->FinalStatus(context_, status, method_, ReplyBytes(response_));
    std::lock_guard<std::recursive_mutex> lock(mu_);
    if (!final.ok()) {
      FinishLocked(final);
      return;
    }
    ++chunks_;
    waiting_ = Waiting::kWrite;
    service_->watchdog()->Arm(this);
    this->StartWrite(&response_);
  }

  void StartReadLocked() {
    waiting_ = Waiting::kRead;
    service_->watchdog()->Arm(this);
    this->StartRead(&request_);
  }

  // The slot is given back before the client can see the status: gRPC runs OnDone only later,
  // so a client that got its status and called again could otherwise still find the server at
  // its --max-concurrent-calls.
  void FinishLocked(const grpc::Status& status) {
    finished_ = true;
    ReleaseSlotLocked();
    this->Finish(status);
  }

  void ReleaseSlotLocked() {
    if (!holds_slot_) return;
    holds_slot_ = false;
    service_->ReleaseCall();
  }

  std::string IdleMessage(absl::string_view what) const {
    return absl::StrCat("stream idle: the client did not ", what, chunks_, " within ",
                        service_->watchdog()->timeout().count(),
                        " ms (the server's --stream-idle-timeout-seconds)");
  }

  KVCompressorService* service_;
  grpc::CallbackServerContext* context_;
  const char* method_;
  Run run_;
  std::atomic<int> refs_{1};
  std::recursive_mutex mu_;  // guards what follows
  bool holds_slot_ = false;
  Waiting waiting_ = Waiting::kNothing;
  bool finished_ = false;  // Finish has been called
  bool done_ = false;      // OnDone has run
  bool idle_write_ = false;
  uint64_t chunks_ = 0;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
};

}  // namespace

KVCompressorService::KVCompressorService(WorkerPool* pool, Options options)
    : pool_(pool), options_(options), watchdog_(options.stream_idle_timeout) {}

grpc::Status KVCompressorService::FinalStatus(grpc::CallbackServerContext* context,
                                              const absl::Status& status, const char* method,
                                              uint64_t reply_bytes) const {
  if (context->IsCancelled()) {
    // The client saw this, whatever the work came to.
    return context->deadline() <= std::chrono::system_clock::now()
               ? grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "call past its deadline")
               : grpc::Status(grpc::StatusCode::CANCELLED, "call cancelled by the client");
  }
  if (status.ok() && options_.max_reply_bytes > 0 && reply_bytes > options_.max_reply_bytes) {
    return grpc::Status(
        grpc::StatusCode::RESOURCE_EXHAUSTED,
        absl::StrCat(method, ": the reply would be ", reply_bytes,
                     " bytes, more than the server sends in one message (",
                     options_.max_reply_bytes,
                     ", --max-message-bytes); send fewer or smaller tensors per call or chunk"));
  }
  return ToGrpcStatus(status);
}

OpsOptions KVCompressorService::OpsFor(grpc::CallbackServerContext* context) const {
  OpsOptions ops;
  ops.decode_limits.max_decoded_bytes = options_.max_decoded_bytes;
  ops.max_tensor_elements = options_.max_tensor_elements;
  ops.observer = options_.observer;
  ops.cancelled = [context] { return context->IsCancelled(); };
  ops.past_deadline = [context] { return context->deadline() <= std::chrono::system_clock::now(); };
  ops.parallelism = {static_cast<int>(pool_->size()), pool_};
  ops.shm.sessions = options_.shm;
  if (options_.shm != nullptr) {
    ops.shm.session = ShmToken(context);
    ops.shm.local = IsLocalPeer(context->peer());
  }
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
    }
    grpc::Status final = FinalStatus(context, status, method, ReplyBytes(*response));
    if (!final.ok()) response->Clear();
    ReleaseCall();
    reactor->Finish(final);
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
  return Dispatch("Compress", context, request, response, &RunCompressRawUnary);
}

grpc::ServerUnaryReactor* KVCompressorService::Decompress(grpc::CallbackServerContext* context,
                                                          const grpc::ByteBuffer* request,
                                                          grpc::ByteBuffer* response) {
  return Dispatch("Decompress", context, request, response, &RunDecompressRawUnary);
}

grpc::ServerUnaryReactor* KVCompressorService::Analyze(grpc::CallbackServerContext* context,
                                                       const v1::AnalyzeRequest* request,
                                                       v1::AnalyzeResponse* response) {
  return Dispatch("Analyze", context, request, response, &RunAnalyze);
}

grpc::ServerUnaryReactor* KVCompressorService::ListCodecs(grpc::CallbackServerContext* context,
                                                          const v1::ListCodecsRequest* request,
                                                          v1::ListCodecsResponse* response) {
  return Dispatch("ListCodecs", context, request, response, &RunListCodecs);
}

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* KVCompressorService::CompressStream(
    grpc::CallbackServerContext* context) {
  return new StreamReactor(this, context, "CompressStream", &RunCompressRaw);
}

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* KVCompressorService::DecompressStream(
    grpc::CallbackServerContext* context) {
  return new StreamReactor(this, context, "DecompressStream", &RunDecompressRaw);
}

absl::StatusOr<std::string> KVCompressorService::ShmSessionOf(
    grpc::CallbackServerContext* context) const {
  if (options_.shm == nullptr) {
    return absl::FailedPreconditionError(
        "this server serves no shared memory (start it with --shm-socket PATH)");
  }
  if (!IsLocalPeer(context->peer())) {
    return absl::PermissionDeniedError(
        "shared-memory regions are served only to clients on a unix: socket or loopback");
  }
  return ShmToken(context);
}

grpc::ServerUnaryReactor* KVCompressorService::SystemSharedMemoryRegister(
    grpc::CallbackServerContext* context, const v1::SystemSharedMemoryRegisterRequest* request,
    v1::SystemSharedMemoryRegisterResponse*) {
  absl::StatusOr<std::string> session = ShmSessionOf(context);
  absl::Status status = session.status();
  if (session.ok()) {
    status = options_.shm->Register(*session, request->name(), request->key(), request->offset(),
                                    request->byte_size());
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

grpc::ServerUnaryReactor* KVCompressorService::SystemSharedMemoryUnregister(
    grpc::CallbackServerContext* context, const v1::SystemSharedMemoryUnregisterRequest* request,
    v1::SystemSharedMemoryUnregisterResponse*) {
  absl::StatusOr<std::string> session = ShmSessionOf(context);
  absl::Status status = session.status();
  if (session.ok()) status = options_.shm->Unregister(*session, request->name());
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

grpc::ServerUnaryReactor* KVCompressorService::SystemSharedMemoryStatus(
    grpc::CallbackServerContext* context, const v1::SystemSharedMemoryStatusRequest* request,
    v1::SystemSharedMemoryStatusResponse* response) {
  absl::StatusOr<std::string> session = ShmSessionOf(context);
  absl::Status status = session.status();
  if (session.ok()) {
    auto regions = options_.shm->Status(*session, request->name());
    status = regions.status();
    if (regions.ok()) {
      for (const auto& region : *regions) {
        auto& entry = (*response->mutable_regions())[region->name()];
        entry.set_name(region->name());
        entry.set_key(region->key());
        entry.set_offset(region->offset());
        entry.set_byte_size(region->size());
        entry.set_writable(region->writable());
      }
    }
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

}  // namespace kvcomp::server

// The kvcomp.v1.KVCompressor callback service. Each call (each chunk of a stream) is handed to
// a WorkerPool, which runs the codec work and finishes the reactor (or writes the chunk's
// answer), so gRPC's polling threads never encode. Streams are lock-step: one chunk is read,
// encoded and answered before the next is read, so a stream holds one chunk at a time; a
// stream that waits on its client longer than the idle timeout is ended (IdleWatchdog).
// Every call ends with the status its client sees, and the metrics count that one: a reply
// over the send limit is RESOURCE_EXHAUSTED before it is sent, and a call whose client gave
// up or whose deadline passed is CANCELLED or DEADLINE_EXCEEDED even if its work finished.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include <grpcpp/grpcpp.h>

#include "kvcomp/v1/kvcomp.grpc.pb.h"
#include "server/idle_watchdog.h"
#include "server/kvcomp_ops.h"
#include "server/shm_sessions.h"
#include "server/worker_pool.h"

namespace kvcomp::server {

// Compress, Decompress and their streams are raw methods: their replies' bulk goes out without
// being copied, and a stream's chunk is released once parsed (server/raw_reply.h). The others
// are ordinary callback methods. (Spelled out: a raw stream method cannot wrap
// CallbackService, whose typed stream method has the same parameters.)
using KVCompressorBase = v1::KVCompressor::WithRawCallbackMethod_Compress<
    v1::KVCompressor::WithRawCallbackMethod_Decompress<v1::KVCompressor::WithCallbackMethod_Analyze<
        v1::KVCompressor::WithRawCallbackMethod_CompressStream<
            v1::KVCompressor::WithRawCallbackMethod_DecompressStream<
                v1::KVCompressor::WithCallbackMethod_SystemSharedMemoryRegister<
                    v1::KVCompressor::WithCallbackMethod_SystemSharedMemoryUnregister<
                        v1::KVCompressor::WithCallbackMethod_SystemSharedMemoryStatus<
                            v1::KVCompressor::WithCallbackMethod_ListCodecs<
                                v1::KVCompressor::Service>>>>>>>>>;

class KVCompressorService final : public KVCompressorBase {
 public:
  struct Options {
    // What one frame may decode to; the send limit is a natural choice.
    uint64_t max_decoded_bytes = uint64_t{64} << 20;
    uint64_t max_tensor_elements = 0;  // 0: no limit
    int max_concurrent_calls = 0;      // beyond it, RESOURCE_EXHAUSTED; 0: no limit
    // The largest reply (a unary reply or one stream message) sent; 0: no limit. Set it to the
    // server's send limit, so that a bigger reply is refused with a message saying so.
    uint64_t max_reply_bytes = 0;
    // A stream waiting this long for its client's next chunk, or for its client to read an
    // answer, is ended; zero: never.
    std::chrono::milliseconds stream_idle_timeout{0};
    CodecObserver* observer = nullptr;  // optional; must outlive the service
    // Shared-memory sessions (--shm-socket); null: the server serves no shared memory. Must
    // outlive the service.
    ShmSessions* shm = nullptr;
  };

  // `pool` must outlive the service and keep running until the server has shut down.
  KVCompressorService(WorkerPool* pool, Options options);

  grpc::ServerUnaryReactor* Compress(grpc::CallbackServerContext* context,
                                     const grpc::ByteBuffer* request,
                                     grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* Decompress(grpc::CallbackServerContext* context,
                                       const grpc::ByteBuffer* request,
                                       grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* Analyze(grpc::CallbackServerContext* context,
                                    const v1::AnalyzeRequest* request,
                                    v1::AnalyzeResponse* response) override;
  grpc::ServerUnaryReactor* ListCodecs(grpc::CallbackServerContext* context,
                                       const v1::ListCodecsRequest* request,
                                       v1::ListCodecsResponse* response) override;
  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* CompressStream(
      grpc::CallbackServerContext* context) override;
  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* DecompressStream(
      grpc::CallbackServerContext* context) override;
  // Triton's system shared-memory RPCs, for the caller's own session (its
  // `kvcomp-shm-session` metadata); answered at once, on gRPC's thread (no codec work).
  grpc::ServerUnaryReactor* SystemSharedMemoryRegister(
      grpc::CallbackServerContext* context, const v1::SystemSharedMemoryRegisterRequest* request,
      v1::SystemSharedMemoryRegisterResponse* response) override;
  grpc::ServerUnaryReactor* SystemSharedMemoryUnregister(
      grpc::CallbackServerContext* context, const v1::SystemSharedMemoryUnregisterRequest* request,
      v1::SystemSharedMemoryUnregisterResponse* response) override;
  grpc::ServerUnaryReactor* SystemSharedMemoryStatus(
      grpc::CallbackServerContext* context, const v1::SystemSharedMemoryStatusRequest* request,
      v1::SystemSharedMemoryStatusResponse* response) override;

  // Ops options for a call on `context`: limits, observer, cancellation, threads, shared memory.
  OpsOptions OpsFor(grpc::CallbackServerContext* context) const;
  // Takes a call slot; false when max_concurrent_calls are already running.
  bool AcquireCall();
  void ReleaseCall();
  WorkerPool* pool() { return pool_; }
  // Call slots held now (counted only when max_concurrent_calls > 0).
  int active_calls() const { return active_calls_.load(); }
  IdleWatchdog* watchdog() { return &watchdog_; }
  // `status` as the client of `context` sees it: a reply bigger than max_reply_bytes is
  // RESOURCE_EXHAUSTED, and an OK call whose client has gone is CANCELLED or DEADLINE_EXCEEDED.
  grpc::Status FinalStatus(grpc::CallbackServerContext* context, const absl::Status& status,
                           const char* method, uint64_t reply_bytes) const;

 private:
  // The shared-memory session `context` names, once checked that this server serves shared
  // memory to this caller; the error otherwise.
  absl::StatusOr<std::string> ShmSessionOf(grpc::CallbackServerContext* context) const;

  template <typename Request, typename Response>
  grpc::ServerUnaryReactor* Dispatch(const char* method, grpc::CallbackServerContext* context,
                                     const Request* request, Response* response,
                                     absl::Status (*run)(const Request&, Response*,
                                                         const OpsOptions&));

  WorkerPool* pool_;
  Options options_;
  std::atomic<int> active_calls_{0};
  IdleWatchdog watchdog_;
};

}  // namespace kvcomp::server

// The kvcomp.v1.KVCompressor callback service. Each call (each chunk of a stream) is handed to
// a WorkerPool, which runs the codec work and finishes the reactor (or writes the chunk's
// answer), so gRPC's polling threads never encode. Streams are lock-step: one chunk is read,
// encoded and answered before the next is read, so a stream holds one chunk at a time.
#pragma once

#include <atomic>
#include <cstdint>

#include <grpcpp/grpcpp.h>

#include "kvcomp/v1/kvcomp.grpc.pb.h"
#include "server/kvcomp_ops.h"
#include "server/worker_pool.h"

namespace kvcomp::server {

// Compress and Decompress are raw methods: their replies' bulk goes out without being copied
// (server/raw_reply.h).
class KVCompressorService final
    : public v1::KVCompressor::WithRawCallbackMethod_Compress<
          v1::KVCompressor::WithRawCallbackMethod_Decompress<v1::KVCompressor::CallbackService>> {
 public:
  struct Options {
    // What one frame may decode to; the send limit is a natural choice.
    uint64_t max_decoded_bytes = uint64_t{64} << 20;
    uint64_t max_tensor_elements = 0;   // 0: no limit
    int max_concurrent_calls = 0;       // beyond it, RESOURCE_EXHAUSTED; 0: no limit
    CodecObserver* observer = nullptr;  // optional; must outlive the service
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
  grpc::ServerBidiReactor<v1::CompressRequest, v1::CompressResponse>* CompressStream(
      grpc::CallbackServerContext* context) override;
  grpc::ServerBidiReactor<v1::DecompressRequest, v1::DecompressResponse>* DecompressStream(
      grpc::CallbackServerContext* context) override;

  // Ops options for a call on `context`: limits, observer, cancellation.
  OpsOptions OpsFor(grpc::CallbackServerContext* context) const;
  // Takes a call slot; false when max_concurrent_calls are already running.
  bool AcquireCall();
  void ReleaseCall();
  WorkerPool* pool() { return pool_; }

 private:
  template <typename Request, typename Response>
  grpc::ServerUnaryReactor* Dispatch(const char* method, grpc::CallbackServerContext* context,
                                     const Request* request, Response* response,
                                     absl::Status (*run)(const Request&, Response*,
                                                         const OpsOptions&));

  WorkerPool* pool_;
  Options options_;
  std::atomic<int> active_calls_{0};
};

}  // namespace kvcomp::server

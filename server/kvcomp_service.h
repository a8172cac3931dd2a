// The kvcomp.v1.KVCompressor callback service. Each call is handed to a WorkerPool, which
// runs the codec work and finishes the reactor, so gRPC's polling threads never encode.
#pragma once

#include <cstdint>

#include <grpcpp/grpcpp.h>

#include "kvcomp/v1/kvcomp.grpc.pb.h"
#include "server/kvcomp_ops.h"
#include "server/worker_pool.h"

namespace kvcomp::server {

class KVCompressorService final : public v1::KVCompressor::CallbackService {
 public:
  struct Options {
    // What one frame may decode to; the send limit is a natural choice.
    uint64_t max_decoded_bytes = uint64_t{64} << 20;
    CodecObserver* observer = nullptr;  // optional; must outlive the service
  };

  // `pool` must outlive the service and keep running until the server has shut down.
  KVCompressorService(WorkerPool* pool, Options options);

  grpc::ServerUnaryReactor* Compress(grpc::CallbackServerContext* context,
                                     const v1::CompressRequest* request,
                                     v1::CompressResponse* response) override;
  grpc::ServerUnaryReactor* Decompress(grpc::CallbackServerContext* context,
                                       const v1::DecompressRequest* request,
                                       v1::DecompressResponse* response) override;
  grpc::ServerUnaryReactor* Analyze(grpc::CallbackServerContext* context,
                                    const v1::AnalyzeRequest* request,
                                    v1::AnalyzeResponse* response) override;

 private:
  template <typename Request, typename Response>
  grpc::ServerUnaryReactor* Dispatch(const char* method, grpc::CallbackServerContext* context,
                                     const Request* request, Response* response,
                                     absl::Status (*run)(const Request&, Response*,
                                                         const OpsOptions&));

  WorkerPool* pool_;
  Options options_;
};

}  // namespace kvcomp::server

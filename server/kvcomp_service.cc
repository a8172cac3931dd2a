#include "server/kvcomp_service.h"

#include <spdlog/spdlog.h>

#include "server/tensor_convert.h"

namespace kvcomp::server {

KVCompressorService::KVCompressorService(WorkerPool* pool, Options options)
    : pool_(pool), options_(options) {}

template <typename Request, typename Response>
grpc::ServerUnaryReactor* KVCompressorService::Dispatch(
    const char* method, grpc::CallbackServerContext* context, const Request* request,
    Response* response, absl::Status (*run)(const Request&, Response*, const OpsOptions&)) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  auto task = [this, method, context, request, response, run, reactor] {
    OpsOptions ops;
    ops.decode_limits.max_decoded_bytes = options_.max_decoded_bytes;
    ops.observer = options_.observer;
    ops.cancelled = [context] { return context->IsCancelled(); };
    absl::Status status = run(*request, response, ops);
    if (!status.ok()) {
      spdlog::debug("{} from {} failed: {}", method, context->peer(), status.ToString());
      response->Clear();
    }
    reactor->Finish(ToGrpcStatus(status));
  };
  if (!pool_->Submit(std::move(task))) {
    reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "server is shutting down"));
  }
  return reactor;
}

grpc::ServerUnaryReactor* KVCompressorService::Compress(grpc::CallbackServerContext* context,
                                                        const v1::CompressRequest* request,
                                                        v1::CompressResponse* response) {
  return Dispatch("Compress", context, request, response, &RunCompress);
}

grpc::ServerUnaryReactor* KVCompressorService::Decompress(grpc::CallbackServerContext* context,
                                                          const v1::DecompressRequest* request,
                                                          v1::DecompressResponse* response) {
  return Dispatch("Decompress", context, request, response, &RunDecompress);
}

grpc::ServerUnaryReactor* KVCompressorService::Analyze(grpc::CallbackServerContext* context,
                                                       const v1::AnalyzeRequest* request,
                                                       v1::AnalyzeResponse* response) {
  return Dispatch("Analyze", context, request, response, &RunAnalyze);
}

}  // namespace kvcomp::server

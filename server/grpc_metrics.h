// The standard gRPC server metrics (go-grpc-prometheus names), recorded by a server
// interceptor: grpc_server_started_total, grpc_server_handled_total, the histogram
// grpc_server_handling_seconds, grpc_server_msg_received_total and grpc_server_msg_sent_total,
// labelled {grpc_service, grpc_method, grpc_type[, grpc_code]}; and the gauge
// kvcomp_in_flight_calls (calls started and not yet done). The label values come from a closed
// set: the methods the server serves, given up front (their series exist from the start, at
// 0), and "unknown" for any other path a caller makes up, so callers cannot add series
// (issue 25, finding 3: 10,000 made-up paths had added 180,000).
#pragma once

#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

#include <grpcpp/support/server_interceptor.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace kvcomp::server {

// "OK", "InvalidArgument", ... as go-grpc-prometheus writes them.
const char* GrpcCodeName(grpc::StatusCode code);

class GrpcMetrics {
 public:
  // The series of one method, created on its first call and cached.
  struct Method {
    prometheus::Labels labels;  // service, method, type
    prometheus::Counter* started = nullptr;
    prometheus::Histogram* handling_seconds = nullptr;
    prometheus::Counter* msg_received = nullptr;
    prometheus::Counter* msg_sent = nullptr;
    std::array<prometheus::Counter*, 17> handled{};  // by status code, created lazily
  };

  struct KnownMethod {
    std::string path;  // "/kvcomp.v1.KVCompressor/Compress"
    grpc::experimental::ServerRpcInfo::Type type;
  };

  // Registers the families and the series of `methods`; `registry` must outlive this object.
  GrpcMetrics(prometheus::Registry& registry, const std::vector<KnownMethod>& methods);

  // An interceptor factory for ServerBuilder::experimental().SetInterceptorCreators. The
  // factory refers to this object, which must outlive the server.
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> MakeInterceptorFactory();

  // The series of `full_method`, or of method "unknown" with the call's type.
  Method& MethodFor(const char* full_method, grpc::experimental::ServerRpcInfo::Type type);
  void RecordHandled(Method& method, grpc::StatusCode code, double seconds);
  prometheus::Gauge& in_flight() { return in_flight_; }

 private:
  prometheus::Family<prometheus::Counter>& started_;
  prometheus::Family<prometheus::Counter>& handled_;
  prometheus::Family<prometheus::Histogram>& handling_seconds_;
  prometheus::Family<prometheus::Counter>& msg_received_;
  prometheus::Family<prometheus::Counter>& msg_sent_;
  prometheus::Gauge& in_flight_;
  Method MakeMethod(absl::string_view service, absl::string_view name,
                    grpc::experimental::ServerRpcInfo::Type type);

  std::mutex mu_;                                       // guards the lazily made `handled` counters
  std::map<std::string, Method, std::less<>> methods_;  // fixed after construction
  std::array<Method, 4> unknown_;                       // by RpcType
};

}  // namespace kvcomp::server

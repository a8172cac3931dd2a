#include "server/grpc_metrics.h"

#include <chrono>

#include "absl/strings/string_view.h"

namespace kvcomp::server {
namespace {

using Clock = std::chrono::steady_clock;
using RpcType = grpc::experimental::ServerRpcInfo::Type;

const char* TypeName(RpcType type) {
  switch (type) {
    case RpcType::UNARY:
      return "unary";
    case RpcType::CLIENT_STREAMING:
      return "client_stream";
    case RpcType::SERVER_STREAMING:
      return "server_stream";
    case RpcType::BIDI_STREAMING:
      return "bidi_stream";
  }
  return "unknown";
}

// Counts the call when created (the call has started), each message received and sent, and
// its outcome at PRE_SEND_STATUS. The call is in flight while the interceptor lives.
class MetricsInterceptor final : public grpc::experimental::Interceptor {
 public:
  MetricsInterceptor(GrpcMetrics* metrics, GrpcMetrics::Method* method)
      : metrics_(metrics), method_(method), start_(Clock::now()) {
    method_->started->Increment();
    metrics_->in_flight().Increment();
  }
  ~MetricsInterceptor() override { metrics_->in_flight().Decrement(); }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    using grpc::experimental::InterceptionHookPoints;
    // A failed receive (the client's end of stream) also passes POST_RECV_MESSAGE, with no
    // message.
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE) &&
        methods->GetRecvMessage() != nullptr) {
      method_->msg_received->Increment();
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_MESSAGE)) {
      method_->msg_sent->Increment();
    }
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      const double seconds = std::chrono::duration<double>(Clock::now() - start_).count();
      metrics_->RecordHandled(*method_, methods->GetSendStatus().error_code(), seconds);
    }
    methods->Proceed();
  }

 private:
  GrpcMetrics* metrics_;
  GrpcMetrics::Method* method_;
  Clock::time_point start_;
};

class MetricsInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit MetricsInterceptorFactory(GrpcMetrics* metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    if (info->method() == nullptr) return nullptr;
    return new MetricsInterceptor(metrics_, &metrics_->MethodFor(info->method(), info->type()));
  }

 private:
  GrpcMetrics* metrics_;
};

const prometheus::Histogram::BucketBoundaries& HandlingBuckets() {
  // go-grpc-prometheus's defaults (prometheus.DefBuckets).
  static const auto* buckets = new prometheus::Histogram::BucketBoundaries{
      0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  return *buckets;
}

}  // namespace

const char* GrpcCodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "Canceled";
    case grpc::StatusCode::UNKNOWN:
      return "Unknown";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "InvalidArgument";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DeadlineExceeded";
    case grpc::StatusCode::NOT_FOUND:
      return "NotFound";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "AlreadyExists";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PermissionDenied";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "ResourceExhausted";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FailedPrecondition";
    case grpc::StatusCode::ABORTED:
      return "Aborted";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OutOfRange";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "Unimplemented";
    case grpc::StatusCode::INTERNAL:
      return "Internal";
    case grpc::StatusCode::UNAVAILABLE:
      return "Unavailable";
    case grpc::StatusCode::DATA_LOSS:
      return "DataLoss";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "Unauthenticated";
    default:
      break;
  }
  return "Unknown";
}

GrpcMetrics::GrpcMetrics(prometheus::Registry& registry, const std::vector<KnownMethod>& methods)
    : started_(prometheus::BuildCounter()
                   .Name("grpc_server_started_total")
                   .Help("Total number of RPCs started on the server.")
                   .Register(registry)),
      handled_(prometheus::BuildCounter()
                   .Name("grpc_server_handled_total")
                   .Help("Total number of RPCs completed on the server, regardless of success "
                         "or failure.")
                   .Register(registry)),
      handling_seconds_(prometheus::BuildHistogram()
                            .Name("grpc_server_handling_seconds")
                            .Help("Histogram of response latency (seconds) of gRPC that had "
                                  "been application-level handled by the server.")
                            .Register(registry)),
      msg_received_(prometheus::BuildCounter()
                        .Name("grpc_server_msg_received_total")
                        .Help("Total number of RPC stream messages received on the server.")
                        .Register(registry)),
      msg_sent_(prometheus::BuildCounter()
                    .Name("grpc_server_msg_sent_total")
                    .Help("Total number of gRPC stream messages sent by the server.")
                    .Register(registry)),
      in_flight_(prometheus::BuildGauge()
                     .Name("kvcomp_in_flight_calls")
                     .Help("RPCs started on the server and not yet finished.")
                     .Register(registry)
                     .Add({})) {
  for (const KnownMethod& m : methods) {
    // "/kvcomp.v1.KVCompressor/Compress" -> service and method.
    absl::string_view path(m.path);
    if (!path.empty() && path.front() == '/') path.remove_prefix(1);
    const size_t slash = path.rfind('/');
    methods_.emplace(m.path, MakeMethod(path.substr(0, slash), path.substr(slash + 1), m.type));
  }
  for (RpcType type : {RpcType::UNARY, RpcType::CLIENT_STREAMING, RpcType::SERVER_STREAMING,
                       RpcType::BIDI_STREAMING}) {
    unknown_[static_cast<size_t>(type)] = MakeMethod("unknown", "unknown", type);
  }
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
GrpcMetrics::MakeInterceptorFactory() {
  return std::make_unique<MetricsInterceptorFactory>(this);
}

GrpcMetrics::Method GrpcMetrics::MakeMethod(absl::string_view service, absl::string_view name,
                                            RpcType type) {
  Method method;
  method.labels = {{"grpc_service", std::string(service)},
                   {"grpc_method", std::string(name)},
                   {"grpc_type", TypeName(type)}};
  method.started = &started_.Add(method.labels);
  method.handling_seconds = &handling_seconds_.Add(method.labels, HandlingBuckets());
  method.msg_received = &msg_received_.Add(method.labels);
  method.msg_sent = &msg_sent_.Add(method.labels);
  return method;
}

GrpcMetrics::Method& GrpcMetrics::MethodFor(const char* full_method, RpcType type) {
  auto it = methods_.find(absl::string_view(full_method));
  if (it != methods_.end()) return it->second;
  const size_t index = static_cast<size_t>(type);
  return unknown_[index < unknown_.size() ? index : static_cast<size_t>(RpcType::BIDI_STREAMING)];
}

void GrpcMetrics::RecordHandled(Method& method, grpc::StatusCode code, double seconds) {
  const size_t index = static_cast<size_t>(code) < method.handled.size()
                           ? static_cast<size_t>(code)
                           : static_cast<size_t>(grpc::StatusCode::UNKNOWN);
  prometheus::Counter* counter;
  {
    std::lock_guard<std::mutex> lock(mu_);
    counter = method.handled[index];
    if (counter == nullptr) {
      prometheus::Labels labels = method.labels;
      labels.emplace("grpc_code", GrpcCodeName(static_cast<grpc::StatusCode>(index)));
      counter = method.handled[index] = &handled_.Add(labels);
    }
  }
  counter->Increment();
  method.handling_seconds->Observe(seconds);
}

}  // namespace kvcomp::server

#include "server/server_app.h"

#include <malloc.h>
#include <pthread.h>

#include <chrono>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>
#include <vector>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <prometheus/exposer.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "kvcomp/v1/kvcomp.grpc.pb.h"
#include "server/codec_metrics.h"
#include "server/grpc_metrics.h"
#include "server/kvcomp_service.h"
#include "server/port_in_use.h"
#include "server/ready_file.h"
#include "server/shm_sessions.h"
#include "server/shm_socket.h"
#include "server/worker_pool.h"

namespace kvcomp::server {
namespace {

constexpr char kServiceName[] = "kvcomp.v1.KVCompressor";

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream s;
  s << in.rdbuf();
  *out = s.str();
  return in.good() || in.eof();
}

// Plaintext, TLS, or mutual TLS. With --tls-ca, a client certificate is verified against it
// whenever one is presented (and required with --tls-require-client-cert): a CA that checked
// nothing unless the requirement was also set accepted certificates from any CA.
std::shared_ptr<grpc::ServerCredentials> MakeCredentials(const ServerConfig& config) {
  if (config.tls_cert.empty()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions options(
      config.tls_require_client_cert ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
      : !config.tls_ca.empty()       ? GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY
                                     : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  if (!ReadFile(config.tls_key, &pair.private_key) ||
      !ReadFile(config.tls_cert, &pair.cert_chain) ||
      (!config.tls_ca.empty() && !ReadFile(config.tls_ca, &options.pem_root_certs))) {
    spdlog::error("cannot read the TLS files (cert {}, key {}, CA {})", config.tls_cert,
                  config.tls_key, config.tls_ca);
    return nullptr;
  }
  options.pem_key_cert_pairs.push_back(std::move(pair));
  return grpc::SslServerCredentials(options);
}

// Every method this server serves, for the metrics' closed set of labels: the service's own
// (from its descriptor), health and reflection.
std::vector<GrpcMetrics::KnownMethod> ServedMethods() {
  using Type = grpc::experimental::ServerRpcInfo::Type;
  std::vector<GrpcMetrics::KnownMethod> methods = {
      {"/grpc.health.v1.Health/Check", Type::UNARY},
      {"/grpc.health.v1.Health/Watch", Type::SERVER_STREAMING},
      {"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", Type::BIDI_STREAMING}};
  const google::protobuf::ServiceDescriptor* service =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
          v1::KVCompressor::service_full_name());
  for (int i = 0; i < service->method_count(); ++i) {
    const google::protobuf::MethodDescriptor* m = service->method(i);
    const Type type = m->client_streaming() && m->server_streaming() ? Type::BIDI_STREAMING
                      : m->client_streaming()                        ? Type::CLIENT_STREAMING
                      : m->server_streaming()                        ? Type::SERVER_STREAMING
                                                                     : Type::UNARY;
    methods.push_back({absl::StrCat("/", service->full_name(), "/", m->name()), type});
  }
  return methods;
}

// The /metrics HTTP server (CivetWeb, inside prometheus-cpp). Each open connection holds one
// of its threads until it times out, so: more threads than the default 2, and a timeout on
// every read, or two idle connections stall every scrape for as long as they stay open
// (issue 25, finding 4).
std::vector<std::string> MetricsServerOptions(const std::string& address) {
  return {"listening_ports",    address, "num_threads",           "8",
          "request_timeout_ms", "5000",  "keep_alive_timeout_ms", "1000"};
}

}  // namespace

sigset_t BlockShutdownSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

int RunServer(const ServerConfig& config, const sigset_t& signals) {
  spdlog::info("kvcomp-server starting (gRPC {}): {}", grpc::Version(), DescribeConfig(config));

  auto registry = std::make_shared<prometheus::Registry>();
  GrpcMetrics grpc_metrics(*registry, ServedMethods());
  CodecMetrics codec_metrics(*registry);
  prometheus::BuildGauge()
      .Name("kvcomp_build_info")
      .Help("Always 1; the labels say which kvcomp-server build is running.")
      .Register(*registry)
      .Add({{"version", KVCOMP_VERSION}, {"grpc_version", grpc::Version()}})
      .Set(1);

  std::unique_ptr<prometheus::Exposer> exposer;
  try {
    exposer = std::make_unique<prometheus::Exposer>(MetricsServerOptions(config.metrics));
  } catch (const std::exception& e) {
    spdlog::error("cannot serve metrics on {}: {}", config.metrics, e.what());
    return 1;
  }
  exposer->RegisterCollectable(registry);
  const std::vector<int> metrics_ports = exposer->GetListeningPorts();
  if (metrics_ports.empty()) {
    spdlog::error("cannot serve metrics on {}: no listening port", config.metrics);
    return 1;
  }
  const std::string metrics_address = WithPort(config.metrics, metrics_ports.front());

  // Shared memory, when asked for: the sessions outlive the service and every call; the socket
  // (which ends sessions) goes first.
  std::unique_ptr<ShmSessions> shm_sessions;
  if (!config.shm_socket.empty()) {
    ShmLimits limits;
    limits.max_clients = config.shm_max_clients;
    limits.max_regions_per_client = config.shm_max_regions_per_client;
    limits.max_bytes_per_client = config.shm_max_bytes_per_client;
    shm_sessions = std::make_unique<ShmSessions>(limits);
  }

  WorkerPool pool(config.workers);
  KVCompressorService::Options service_options;
  service_options.max_decoded_bytes = config.max_decompressed_bytes;
  service_options.max_tensor_elements = config.max_tensor_elements;
  service_options.max_concurrent_calls = config.max_concurrent_calls;
  service_options.max_reply_bytes = static_cast<uint64_t>(config.max_message_bytes);
  service_options.stream_idle_timeout =
      std::chrono::milliseconds(static_cast<int64_t>(config.stream_idle_timeout_seconds * 1000));
  service_options.observer = &codec_metrics;
  service_options.shm = shm_sessions.get();
  KVCompressorService service(&pool, service_options);

  if (absl::Status free = CheckPortNotInUse(config.listen); !free.ok()) {
    spdlog::error("cannot serve gRPC on {}: {}", config.listen, std::string(free.message()));
    pool.Shutdown();
    return 1;
  }
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int grpc_port = 0;
  std::shared_ptr<grpc::ServerCredentials> credentials = MakeCredentials(config);
  if (credentials == nullptr) {
    pool.Shutdown();
    return 1;
  }
  builder.AddListeningPort(config.listen, credentials, &grpc_port);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, config.keepalive_time_ms);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, config.keepalive_timeout_ms);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // gRPC binds with SO_REUSEPORT by default. This asks it not to; Debian's 1.51 does anyway,
  // so CheckPortNotInUse above is what refuses a port in use (issue 25, finding 9).
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // One connection's share of the call slots: HTTP/2 advertises this many concurrent streams,
  // and a client queues calls beyond it instead of holding every slot.
  if (config.max_calls_per_connection > 0) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, config.max_calls_per_connection);
  }
  if (config.max_connection_age_ms > 0) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS, config.max_connection_age_ms);
  }
  if (config.max_connection_age_grace_ms > 0) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
                               config.max_connection_age_grace_ms);
  }
  builder.RegisterService(&service);
  builder.SetMaxReceiveMessageSize(config.max_message_bytes);
  builder.SetMaxSendMessageSize(config.max_message_bytes);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
  creators.push_back(grpc_metrics.MakeInterceptorFactory());
  builder.experimental().SetInterceptorCreators(std::move(creators));
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || grpc_port == 0) {
    spdlog::error("cannot serve gRPC on {} (is another process listening there?)", config.listen);
    pool.Shutdown();
    return 1;
  }
  std::unique_ptr<ShmSocketServer> shm_socket;
  if (shm_sessions != nullptr) {
    absl::StatusOr<std::unique_ptr<ShmSocketServer>> started = ShmSocketServer::Start(
        config.shm_socket, static_cast<unsigned>(std::stoul(config.shm_socket_mode, nullptr, 8)),
        shm_sessions.get());
    if (!started.ok()) {
      spdlog::error("shared memory: {}", started.status().ToString());
      server->Shutdown();
      server->Wait();
      pool.Shutdown();
      return 1;
    }
    shm_socket = *std::move(started);
  }
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  health->SetServingStatus(true);
  health->SetServingStatus(kServiceName, true);
  const std::string grpc_address = WithPort(config.listen, grpc_port);

  if (!config.ready_file.empty()) {
    absl::Status written = WriteFileAtomically(
        config.ready_file,
        absl::StrCat(
            "grpc=", grpc_address, "\nmetrics=", metrics_address, "\n",
            config.shm_socket.empty() ? "" : absl::StrCat("shm=", config.shm_socket, "\n")));
    if (!written.ok()) {
      spdlog::error("ready file: {}", written.ToString());
      server->Shutdown();
      server->Wait();
      pool.Shutdown();
      return 1;
    }
  }
  spdlog::info("serving {} on {} ({}) with {} workers; metrics on http://{}/metrics{}",
               kServiceName, grpc_address,
               config.tls_cert.empty()          ? "plaintext"
               : config.tls_require_client_cert ? "mutual TLS"
                                                : "TLS",
               pool.size(), metrics_address,
               config.shm_socket.empty() ? "" : "; shared memory on " + config.shm_socket);

  // Freed memory goes back to the system every few seconds, and only here: free() never trims
  // the one heap (main.cc), so that calls reuse its pages while they keep coming.
  absl::Notification stopping;
  std::thread trimmer([&] {
    while (!stopping.WaitForNotificationWithTimeout(absl::Seconds(5))) malloc_trim(0);
  });
  // This thread is the only one that takes SIGTERM/SIGINT (they are blocked everywhere), so
  // Shutdown is never called from a handler.
  int signal = 0;
  if (sigwait(&signals, &signal) != 0) spdlog::error("sigwait failed; shutting down");
  spdlog::info("signal {} received: NOT_SERVING, shutting down within {} s", signal,
               config.shutdown_grace_seconds);
  stopping.Notify();
  trimmer.join();
  health->SetServingStatus(false);
  // Calls in flight may finish within the grace period, then are cancelled. gRPC's Shutdown
  // also waits for every client connection to close after its GOAWAY, which an idle client
  // that is not polling takes seconds to do (5.7 s in the review): once no call is left,
  // the process ends without waiting for idle connections.
  absl::Notification shut_down;
  std::thread shutdown([&] {
    const auto grace = std::chrono::duration_cast<std::chrono::system_clock::duration>(
        std::chrono::duration<double>(config.shutdown_grace_seconds));
    server->Shutdown(std::chrono::system_clock::now() + grace);
    shut_down.Notify();
  });
  // (The first 100 ms let Shutdown stop taking new calls before the count is read.)
  if (!shut_down.WaitForNotificationWithTimeout(absl::Milliseconds(100))) {
    while (grpc_metrics.in_flight().Value() > 0 &&
           !shut_down.WaitForNotificationWithTimeout(absl::Milliseconds(20))) {
    }
  }
  pool.Shutdown();
  shm_socket.reset();  // ends every session: the socket file goes
  // The metrics endpoint serves until the process ends: CivetWeb's stop polls in 2 s steps.
  // (Kept reachable from a static, so LeakSanitizer does not count it as leaked.)
  static prometheus::Exposer* const serving_until_exit = exposer.release();
  (void)serving_until_exit;
  if (!shut_down.HasBeenNotified()) {
    spdlog::info("kvcomp-server stopped (not waiting for idle client connections to close)");
    spdlog::shutdown();
    std::_Exit(0);  // the gRPC server still waits on those connections; nothing else is left
  }
  shutdown.join();
  spdlog::info("kvcomp-server stopped");
  return 0;
}

}  // namespace kvcomp::server

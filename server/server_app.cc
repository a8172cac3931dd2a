#include "server/server_app.h"

#include <malloc.h>
#include <pthread.h>

#include <chrono>
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
#include "server/codec_metrics.h"
#include "server/grpc_metrics.h"
#include "server/kvcomp_service.h"
#include "server/ready_file.h"
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

// Plaintext, TLS, or mutual TLS (client cert required and verified against --tls-ca).
std::shared_ptr<grpc::ServerCredentials> MakeCredentials(const ServerConfig& config) {
  if (config.tls_cert.empty()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions options(
      config.tls_require_client_cert ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
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
  GrpcMetrics grpc_metrics(*registry);
  CodecMetrics codec_metrics(*registry);
  prometheus::BuildGauge()
      .Name("kvcomp_build_info")
      .Help("Always 1; the labels say which kvcomp-server build is running.")
      .Register(*registry)
      .Add({{"version", KVCOMP_VERSION}, {"grpc_version", grpc::Version()}})
      .Set(1);

  std::unique_ptr<prometheus::Exposer> exposer;
  try {
    exposer = std::make_unique<prometheus::Exposer>(config.metrics, /*num_threads=*/2);
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

  WorkerPool pool(config.workers);
  KVCompressorService::Options service_options;
  service_options.max_decoded_bytes = config.max_decompressed_bytes;
  service_options.max_tensor_elements = config.max_tensor_elements;
  service_options.max_concurrent_calls = config.max_concurrent_calls;
  service_options.observer = &codec_metrics;
  KVCompressorService service(&pool, service_options);

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
    spdlog::error("cannot serve gRPC on {}", config.listen);
    pool.Shutdown();
    return 1;
  }
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  health->SetServingStatus(true);
  health->SetServingStatus(kServiceName, true);
  const std::string grpc_address = WithPort(config.listen, grpc_port);

  if (!config.ready_file.empty()) {
    absl::Status written = WriteFileAtomically(
        config.ready_file,
        absl::StrCat("grpc=", grpc_address, "\nmetrics=", metrics_address, "\n"));
    if (!written.ok()) {
      spdlog::error("ready file: {}", written.ToString());
      server->Shutdown();
      server->Wait();
      pool.Shutdown();
      return 1;
    }
  }
  spdlog::info("serving {} on {} ({}) with {} workers; metrics on http://{}/metrics", kServiceName,
               grpc_address,
               config.tls_cert.empty()          ? "plaintext"
               : config.tls_require_client_cert ? "mutual TLS"
                                                : "TLS",
               pool.size(), metrics_address);

  // The only thread that takes SIGTERM/SIGINT; Shutdown is never called from a handler.
  std::thread signal_thread([&] {
    int signal = 0;
    if (sigwait(&signals, &signal) != 0) {
      spdlog::error("sigwait failed; shutting down");
    }
    spdlog::info("signal {} received: NOT_SERVING, shutting down within {} s", signal,
                 config.shutdown_grace_seconds);
    health->SetServingStatus(false);
    const auto grace = std::chrono::duration_cast<std::chrono::system_clock::duration>(
        std::chrono::duration<double>(config.shutdown_grace_seconds));
    server->Shutdown(std::chrono::system_clock::now() + grace);
  });
  // Freed memory goes back to the system every few seconds: calls of many MiB leave free
  // pages spread over glibc's per-thread arenas, which it keeps (the CI soak saw RSS stay
  // 70 MiB above its idle level after a round of 16 MiB tensors).
  absl::Notification stopped;
  std::thread trimmer([&] {
    while (!stopped.WaitForNotificationWithTimeout(absl::Seconds(5))) malloc_trim(0);
  });
  server->Wait();
  stopped.Notify();
  trimmer.join();
  signal_thread.join();
  pool.Shutdown();
  spdlog::debug("gRPC server stopped; stopping the metrics endpoint");
  exposer.reset();
  spdlog::info("kvcomp-server stopped");
  return 0;
}

}  // namespace kvcomp::server

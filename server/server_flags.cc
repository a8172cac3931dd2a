#include "server/server_flags.h"

#include <climits>
#include <thread>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

namespace kvcomp::server {

std::optional<ServerConfig> ParseServerFlags(int argc, char** argv, int* exit_code) {
  ServerConfig config;
  config.workers = std::thread::hardware_concurrency();
  if (config.workers == 0) config.workers = 1;

  CLI::App app{"kvcomp-server: gRPC service that compresses LLM KV caches", "kvcomp-server"};
  app.option_defaults()->always_capture_default();
  app.add_option("--listen", config.listen, "gRPC listen address, host:port (port 0: any free)");
  app.add_option("--metrics", config.metrics,
                 "Prometheus /metrics listen address, host:port (port 0: any free)");
  app.add_option("--max-message-bytes", config.max_message_bytes,
                 "Largest gRPC message received or sent, in bytes")
      ->check(CLI::Range(1, INT_MAX));
  app.add_option("--workers", config.workers, "Codec worker threads (default: number of cores)")
      ->check(CLI::Range(1, 1024));
  app.add_option("--ready-file", config.ready_file,
                 "Once both listeners are bound, write 'grpc=HOST:PORT' and "
                 "'metrics=HOST:PORT' lines to this file (atomically)");
  app.add_option("--shutdown-grace-seconds", config.shutdown_grace_seconds,
                 "On SIGTERM/SIGINT, how long in-flight calls may run before being cancelled")
      ->check(CLI::Range(0.0, 3600.0));
  app.add_option("--log-level", config.log_level, "trace, debug, info, warn, error, critical, off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    *exit_code = app.exit(e);
    return std::nullopt;
  }
  return config;
}

std::string DescribeConfig(const ServerConfig& c) {
  return fmt::format(
      "listen={} metrics={} max_message_bytes={} workers={} ready_file={} "
      "shutdown_grace_seconds={} log_level={}",
      c.listen, c.metrics, c.max_message_bytes, c.workers,
      c.ready_file.empty() ? "(none)" : c.ready_file, c.shutdown_grace_seconds, c.log_level);
}

}  // namespace kvcomp::server

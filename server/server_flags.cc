#include "server/server_flags.h"

#include <climits>
#include <cstdio>
#include <thread>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_replace.h"

namespace kvcomp::server {
namespace {

// "--max-message-bytes" -> "KVCOMP_MAX_MESSAGE_BYTES".
std::string EnvName(const std::string& flag) {
  return "KVCOMP_" + absl::AsciiStrToUpper(absl::StrReplaceAll(flag.substr(2), {{"-", "_"}}));
}

template <typename T>
CLI::Option* Flag(CLI::App& app, const std::string& name, T& value, const std::string& help) {
  return app.add_option(name, value, help)->envname(EnvName(name));
}

}  // namespace

bool IsLocal(const std::string& listen) {
  return absl::StartsWith(listen, "127.") || absl::StartsWith(listen, "[::1]:") ||
         absl::StartsWith(listen, "localhost:") || absl::StartsWith(listen, "unix:");
}

std::optional<ServerConfig> ParseServerFlags(int argc, char** argv, int* exit_code) {
  ServerConfig config;
  config.workers = std::thread::hardware_concurrency();
  if (config.workers == 0) config.workers = 1;

  CLI::App app{
      "kvcomp-server: gRPC service that compresses LLM KV caches.\n"
      "Every flag --foo-bar may also be given as the environment variable "
      "KVCOMP_FOO_BAR or as `foo-bar = value` in the --config file "
      "(command line > environment > file).",
      "kvcomp-server"};
  app.option_defaults()->always_capture_default();
  app.set_config("--config", "", "Read flags from this TOML/INI file (KVCOMP_CONFIG)")
      ->envname("KVCOMP_CONFIG");
  Flag(app, "--listen", config.listen,
       "gRPC listen address, host:port (port 0: any free) or unix:PATH (a Unix socket, for a "
       "client on the same host); plaintext only on loopback or a Unix socket unless "
       "--allow-plaintext");
  Flag(app, "--metrics", config.metrics,
       "Prometheus /metrics listen address, host:port (port 0: any free)");
  Flag(app, "--max-message-bytes", config.max_message_bytes,
       "Largest gRPC message (a unary call or one stream chunk) received or sent, in bytes")
      ->check(CLI::Range(1, INT_MAX));
  Flag(app, "--max-tensor-elements", config.max_tensor_elements,
       "Largest tensor (elements) Compress and Analyze accept; 0: no limit");
  Flag(app, "--max-decompressed-bytes", config.max_decompressed_bytes,
       "Most bytes one Decompress call (or stream chunk) may decode to, all its frames "
       "together, checked before allocating each (default: --max-message-bytes)");
  Flag(app, "--max-concurrent-calls", config.max_concurrent_calls,
       "Calls (unary or streams) served at once; beyond, RESOURCE_EXHAUSTED; 0: no limit")
      ->check(CLI::Range(0, 1 << 20));
  Flag(app, "--max-calls-per-connection", config.max_calls_per_connection,
       "Calls one connection may have open at once (HTTP/2 max concurrent streams; a client "
       "queues the rest), so one connection cannot hold every call slot; 0: no limit")
      ->check(CLI::Range(0, 1 << 20));
  Flag(app, "--stream-idle-timeout-seconds", config.stream_idle_timeout_seconds,
       "End a stream whose client sends no chunk, or reads no answer, for this long "
       "(DEADLINE_EXCEEDED, resp. CANCELLED); 0: never")
      ->check(CLI::Range(0.0, 86400.0));
  Flag(app, "--workers", config.workers, "Codec worker threads (default: number of cores)")
      ->check(CLI::Range(1, 1024));
  Flag(app, "--ready-file", config.ready_file,
       "Once both listeners are bound, write 'grpc=HOST:PORT' and "
       "'metrics=HOST:PORT' lines to this file (atomically)");
  Flag(app, "--shutdown-grace-seconds", config.shutdown_grace_seconds,
       "On SIGTERM/SIGINT, how long in-flight calls may run before being cancelled")
      ->check(CLI::Range(0.0, 3600.0));
  Flag(app, "--log-level", config.log_level, "trace, debug, info, warn, error, critical, off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  Flag(app, "--tls-cert", config.tls_cert, "Server certificate chain (PEM file); enables TLS")
      ->check(CLI::ExistingFile);
  Flag(app, "--tls-key", config.tls_key, "Server private key (PEM file)")->check(CLI::ExistingFile);
  Flag(app, "--tls-ca", config.tls_ca,
       "CA certificates (PEM file): a client certificate, when presented, must chain to one "
       "(a certificate from another CA is refused)")
      ->check(CLI::ExistingFile);
  app.add_flag("--tls-require-client-cert", config.tls_require_client_cert,
               "Mutual TLS: refuse clients without a certificate signed by --tls-ca")
      ->envname(EnvName("--tls-require-client-cert"));
  app.add_flag("--allow-plaintext", config.allow_plaintext,
               "Serve plaintext on a non-loopback --listen: only where the network itself is "
               "encrypted or private (a mesh's mTLS sidecar, a pod network)")
      ->envname(EnvName("--allow-plaintext"));
  Flag(app, "--keepalive-time-ms", config.keepalive_time_ms,
       "Ping an idle connection after this long")
      ->check(CLI::Range(1, INT_MAX));
  Flag(app, "--keepalive-timeout-ms", config.keepalive_timeout_ms,
       "Close the connection when a ping is not answered within this long")
      ->check(CLI::Range(1, INT_MAX));
  Flag(app, "--max-connection-age-ms", config.max_connection_age_ms,
       "Close connections older than this (with GOAWAY), so clients rebalance; 0: never")
      ->check(CLI::Range(0, INT_MAX));
  Flag(app, "--max-connection-age-grace-ms", config.max_connection_age_grace_ms,
       "After max age, how long calls may still finish; 0: unlimited")
      ->check(CLI::Range(0, INT_MAX));
  Flag(app, "--shm-socket", config.shm_socket,
       "Serve shared-memory tensors (Triton's system shared-memory RPCs): the Unix socket path "
       "clients pass sealed memfds over; each connection is one client's session, and its "
       "regions go when it closes. Region references are served to unix: and loopback clients "
       "only. Empty: none served");
  Flag(app, "--shm-socket-mode", config.shm_socket_mode,
       "Permissions of the --shm-socket file, octal (who may connect)");
  Flag(app, "--shm-max-clients", config.shm_max_clients,
       "Shared-memory sessions (socket connections) served at once")
      ->check(CLI::Range(1, 1 << 16));
  Flag(app, "--shm-max-regions-per-client", config.shm_max_regions_per_client,
       "Regions one shared-memory client may have registered at once")
      ->check(CLI::Range(1, 1 << 16));
  Flag(app, "--shm-max-bytes-per-client", config.shm_max_bytes_per_client,
       "Bytes of regions one shared-memory client may have registered at once (server address "
       "space; the memory is the client's)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 46));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    *exit_code = app.exit(e);
    return std::nullopt;
  }
  if (CLI::Option* file = app.get_config_ptr(); file != nullptr && file->count() > 0) {
    config.config_file = file->as<std::string>();
  }
  if (config.max_decompressed_bytes == 0) {
    config.max_decompressed_bytes = static_cast<uint64_t>(config.max_message_bytes);
  }
  auto fail = [exit_code](const std::string& why) {
    std::fprintf(stderr, "kvcomp-server: %s\n", why.c_str());
    *exit_code = 2;
    return std::nullopt;
  };
  if (config.tls_cert.empty() != config.tls_key.empty()) {
    return fail("--tls-cert and --tls-key go together");
  }
  const bool tls = !config.tls_cert.empty();
  if (!tls && (!config.tls_ca.empty() || config.tls_require_client_cert)) {
    return fail("--tls-ca and --tls-require-client-cert need --tls-cert and --tls-key");
  }
  if (config.tls_require_client_cert && config.tls_ca.empty()) {
    return fail("--tls-require-client-cert needs --tls-ca");
  }
  if (config.shm_socket_mode.empty() ||
      config.shm_socket_mode.find_first_not_of("01234567") != std::string::npos ||
      std::stoul(config.shm_socket_mode, nullptr, 8) > 0777) {
    return fail("--shm-socket-mode is octal permissions, e.g. 0600 or 0660, not " +
                config.shm_socket_mode);
  }
  if (!tls && !config.allow_plaintext && !IsLocal(config.listen)) {
    return fail(
        "plaintext is served on loopback or a Unix socket only: give --tls-cert/--tls-key (or "
        "--allow-plaintext, behind an encrypting mesh) to listen on " +
        config.listen);
  }
  return config;
}

std::string DescribeConfig(const ServerConfig& c) {
  auto or_none = [](const std::string& s) { return s.empty() ? std::string("(none)") : s; };
  return fmt::format(
      "config={} listen={} metrics={} max_message_bytes={} max_tensor_elements={} "
      "max_decompressed_bytes={} max_concurrent_calls={} max_calls_per_connection={} "
      "stream_idle_timeout_seconds={} workers={} ready_file={} "
      "shutdown_grace_seconds={} log_level={} tls_cert={} tls_key={} tls_ca={} "
      "tls_require_client_cert={} allow_plaintext={} keepalive_time_ms={} keepalive_timeout_ms={} "
      "max_connection_age_ms={} max_connection_age_grace_ms={} shm_socket={} shm_socket_mode={} "
      "shm_max_clients={} shm_max_regions_per_client={} shm_max_bytes_per_client={}",
      or_none(c.config_file), c.listen, c.metrics, c.max_message_bytes, c.max_tensor_elements,
      c.max_decompressed_bytes, c.max_concurrent_calls, c.max_calls_per_connection,
      c.stream_idle_timeout_seconds, c.workers, or_none(c.ready_file), c.shutdown_grace_seconds,
      c.log_level, or_none(c.tls_cert), or_none(c.tls_key), or_none(c.tls_ca),
      c.tls_require_client_cert, c.allow_plaintext, c.keepalive_time_ms, c.keepalive_timeout_ms,
      c.max_connection_age_ms, c.max_connection_age_grace_ms, or_none(c.shm_socket),
      c.shm_socket_mode, c.shm_max_clients, c.shm_max_regions_per_client,
      c.shm_max_bytes_per_client);
}

}  // namespace kvcomp::server

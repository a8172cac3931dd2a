// Command-line flags of kvcomp-server. Every flag --foo-bar can also be set through the
// environment variable KVCOMP_FOO_BAR or a config file (--config, TOML/INI `foo-bar = value`);
// the command line wins over the environment, which wins over the file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace kvcomp::server {

struct ServerConfig {
  std::string listen = "127.0.0.1:50051";
  std::string metrics = "127.0.0.1:9464";
  int max_message_bytes = 64 << 20;
  uint64_t max_tensor_elements = uint64_t{1} << 31;
  uint64_t max_decompressed_bytes = 0;  // 0 until parsed: then max_message_bytes
  int max_concurrent_calls = 64;
  int max_calls_per_connection = 32;  // 0: no per-connection limit
  double stream_idle_timeout_seconds = 60;
  size_t workers = 0;      // 0 until parsed: then the number of cores
  std::string ready_file;  // empty: none
  double shutdown_grace_seconds = 10;
  std::string log_level = "info";
  // TLS: both cert and key, or neither (plaintext, allowed on loopback or a Unix socket only).
  std::string tls_cert;
  std::string tls_key;
  std::string tls_ca;  // client CAs; with tls_require_client_cert, mutual TLS
  bool tls_require_client_cert = false;
  // Plaintext on a non-loopback address, for pods whose network already encrypts (a service
  // mesh's mTLS sidecar) or is private; off, such a --listen is refused.
  bool allow_plaintext = false;
  int keepalive_time_ms = 60'000;
  int keepalive_timeout_ms = 20'000;
  int max_connection_age_ms = 0;        // 0: unlimited
  int max_connection_age_grace_ms = 0;  // 0: unlimited
  std::string config_file;              // the file read, if any
  // Shared memory (issue 27): the Unix socket clients pass memfds over; empty: none served.
  std::string shm_socket;
  std::string shm_socket_mode = "0600";  // octal
  int shm_max_clients = 64;
  int shm_max_regions_per_client = 64;
  uint64_t shm_max_bytes_per_client = uint64_t{64} << 30;
};

// Parses argv (and the environment and config file). Returns the config, or nullopt with
// `*exit_code` set when the process should exit now (0 after --help, 2 after a bad flag or
// combination; why has been printed).
std::optional<ServerConfig> ParseServerFlags(int argc, char** argv, int* exit_code);

// One line for the startup log: every setting, the effective values.
std::string DescribeConfig(const ServerConfig& config);

// True when `listen` can be reached from this host only: a loopback "host:port" (127.x.x.x,
// [::1] or localhost) or a Unix socket ("unix:PATH", whose file permissions decide who).
bool IsLocal(const std::string& listen);

}  // namespace kvcomp::server

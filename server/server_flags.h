// Command-line flags of kvcomp-server.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

namespace kvcomp::server {

struct ServerConfig {
  std::string listen = "127.0.0.1:50051";
  std::string metrics = "127.0.0.1:9464";
  int max_message_bytes = 64 << 20;
  size_t workers = 0;      // 0 until parsed: then the number of cores
  std::string ready_file;  // empty: none
  double shutdown_grace_seconds = 10;
  std::string log_level = "info";
};

// Parses argv. Returns the config, or nullopt with `*exit_code` set when the process should
// exit now (0 after --help, 2 after a bad flag; CLI11 has printed why).
std::optional<ServerConfig> ParseServerFlags(int argc, char** argv, int* exit_code);

// One line for the startup log.
std::string DescribeConfig(const ServerConfig& config);

}  // namespace kvcomp::server

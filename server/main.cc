// kvcomp-server: the KVCompressor gRPC service. See --help for the flags.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "server/server_app.h"
#include "server/server_flags.h"

int main(int argc, char** argv) {
  // Before any thread starts, so every thread inherits the blocked mask.
  const sigset_t signals = kvcomp::server::BlockShutdownSignals();

  int exit_code = 0;
  std::optional<kvcomp::server::ServerConfig> config =
      kvcomp::server::ParseServerFlags(argc, argv, &exit_code);
  if (!config.has_value()) return exit_code;

  spdlog::set_default_logger(spdlog::stderr_color_mt("kvcomp-server"));
  spdlog::set_level(spdlog::level::from_str(config->log_level));
  return kvcomp::server::RunServer(*config, signals);
}

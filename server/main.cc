// kvcomp-server: the KVCompressor gRPC service. See --help for the flags.
#include <malloc.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "server/server_app.h"
#include "server/server_flags.h"

int main(int argc, char** argv) {
  // Tensors and frames of 4 MiB and more get their own mappings, returned to the system when
  // freed. glibc's default threshold rises to the largest block freed (up to 32 MiB), after
  // which a burst of large calls stays in the heap: the soak saw RSS step from 67 to 149 MiB
  // after a round of 16 MiB tensors and stay there, idle.
  mallopt(M_MMAP_THRESHOLD, 4 << 20);
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

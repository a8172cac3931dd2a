// kvcomp-server: the KVCompressor gRPC service. See --help for the flags.
#include <malloc.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "server/server_app.h"
#include "server/server_flags.h"

int main(int argc, char** argv) {
  // Memory is kept from call to call and handed back when the server rests (the trimmer in
  // server_app.cc calls malloc_trim every 5 s). A call frees its frames and outputs at its end,
  // and a heap that gave them straight back made the next call fault them in again: one 64 MiB
  // Compress cost 2.4 CPU s / GB so, 1.2 without (docs/BENCHMARKS.md).
  // - free() never trims the heap; glibc's threshold, once the mmap one is set, is 128 KiB.
  // - Blocks up to 16 MiB (a tensor of 8 heads x 8192 tokens x 128 FP16) come from the heap,
  //   not from mmap, for the same reason. A stream's chunks (32 MiB by default) are mapped on
  //   their own and unmapped when freed: in the heap, they raised a 256 MiB stream's peak RSS
  //   from 86 to 120 MiB (kvcomp_stream_memory_test), 16 MiB blocks only to 110.
  // - One arena: malloc_trim gives back only the main arena's top, so per-thread arenas kept the
  //   last burst's memory for good (58 MiB more of an idle server's RSS). The lock is taken a
  //   few dozen times by a task of milliseconds; small blocks come from per-thread caches.
  mallopt(M_ARENA_MAX, 1);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_MMAP_THRESHOLD, 16 << 20);
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

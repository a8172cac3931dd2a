// Runs kvcomp-server: listeners, health, reflection, metrics, and the signal-driven shutdown.
#pragma once

#include <csignal>

#include "server/server_flags.h"

namespace kvcomp::server {

// Blocks SIGTERM and SIGINT in the calling thread and returns the set. Call it first thing in
// main, before any thread exists, so that every thread inherits the mask and only the
// dedicated sigwait thread ever sees these signals.
sigset_t BlockShutdownSignals();

// Serves until one of `signals` arrives, then: health NOT_SERVING, Shutdown with the grace
// deadline, Wait. Returns the process exit code (0 after a clean shutdown).
int RunServer(const ServerConfig& config, const sigset_t& signals);

}  // namespace kvcomp::server

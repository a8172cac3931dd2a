// Starts the real kvcomp-server binary on ephemeral loopback ports and stops it again.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace kvcomp::testing {

class ServerProcess {
 public:
  // The kvcomp-server this build produced.
  static std::string BinaryPath();

  // Runs the server with `--listen 127.0.0.1:0 --metrics 127.0.0.1:0 --ready-file <tmp>`
  // plus `extra_args` (a `--listen` among them replaces the first), and waits (up to
  // `timeout_seconds`) for the ready file. Fails if the process exits first or the file never
  // appears.
  static absl::StatusOr<std::unique_ptr<ServerProcess>> Start(
      const std::vector<std::string>& extra_args = {}, double timeout_seconds = 30);

  // Stop(): SIGTERM to this PID only, SIGKILL if it has not exited within the timeout.
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  const std::string& address() const { return address_; }          // "127.0.0.1:PORT"
  const std::string& metrics_address() const { return metrics_; }  // "127.0.0.1:PORT"
  const std::string& shm_socket() const { return shm_; }           // with --shm-socket, else empty
  // A fresh path for --shm-socket, in this process's temporary folder for servers.
  static std::string TempSocketPath(const std::string& name);
  pid_t pid() const { return pid_; }

  // Sends SIGTERM and waits up to `timeout_seconds`; then SIGKILL. Returns the wait status
  // (use WIFEXITED/WEXITSTATUS), or an error if the process was already reaped.
  absl::StatusOr<int> Stop(double timeout_seconds = 30);

 private:
  ServerProcess(pid_t pid, std::string dir) : pid_(pid), dir_(std::move(dir)) {}

  pid_t pid_;
  bool reaped_ = false;
  std::string dir_;  // temp dir holding the ready file
  std::string address_;
  std::string metrics_;
  std::string shm_;
};

// Entries of /proc/PID/fd (open fds), or -1.
int OpenFdCount(pid_t pid);
// Lines of /proc/PID/maps that contain `needle` (e.g. "memfd:kvcomp" for client regions).
int MappingCount(pid_t pid, const std::string& needle);

// A memory field of /proc/PID/status ("VmRSS", "VmHWM") in KiB, or -1.
int64_t ProcStatusKiB(pid_t pid, const std::string& field);

}  // namespace kvcomp::testing

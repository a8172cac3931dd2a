#include "tests/support/server_process.h"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

extern char** environ;

namespace kvcomp::testing {
namespace {

using Clock = std::chrono::steady_clock;

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return absl::StrCat("exited with code ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return absl::StrCat("killed by signal ", WTERMSIG(status));
  return absl::StrCat("wait status ", status);
}

// Waits for `pid` until `deadline`; true once it has exited (or is no longer our child, which
// must then never be signalled: the PID may be reused).
bool WaitUntil(pid_t pid, Clock::time_point deadline, int* status) {
  for (;;) {
    const pid_t r = ::waitpid(pid, status, WNOHANG);
    if (r == pid) return true;
    if (r < 0 && errno != EINTR) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace

std::string ServerProcess::BinaryPath() { return KVCOMP_SERVER_BINARY; }

absl::StatusOr<std::unique_ptr<ServerProcess>> ServerProcess::Start(
    const std::vector<std::string>& extra_args, double timeout_seconds) {
  std::string dir_template =
      (std::filesystem::temp_directory_path() / "kvcomp-server-test.XXXXXX").string();
  if (::mkdtemp(dir_template.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("mkdtemp: ", std::strerror(errno)));
  }
  const std::string ready_file = dir_template + "/ready";

  std::vector<std::string> args = {BinaryPath(), "--metrics", "127.0.0.1:0", "--ready-file",
                                   ready_file};
  // A given --listen (a restart on a known port) replaces the ephemeral one.
  if (std::find(extra_args.begin(), extra_args.end(), "--listen") == extra_args.end()) {
    args.insert(args.end(), {"--listen", "127.0.0.1:0"});
  }
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  // The child starts with default signal dispositions and an empty mask, whatever the test
  // process has set.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t empty, defaults;
  sigemptyset(&empty);
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGTERM);
  sigaddset(&defaults, SIGINT);
  sigaddset(&defaults, SIGPIPE);
  posix_spawnattr_setsigmask(&attr, &empty);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, argv[0], nullptr, &attr, argv.data(), environ);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    std::filesystem::remove_all(dir_template);
    return absl::InternalError(absl::StrCat("spawn ", argv[0], ": ", std::strerror(rc)));
  }
  std::unique_ptr<ServerProcess> process(new ServerProcess(pid, dir_template));

  const Clock::time_point deadline =
      Clock::now() +
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout_seconds));
  for (;;) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      process->reaped_ = true;
      return absl::FailedPreconditionError(absl::StrCat("kvcomp-server ", absl::StrJoin(args, " "),
                                                        " ", DescribeWaitStatus(status),
                                                        " before it was ready"));
    }
    std::ifstream in(ready_file);  // written by rename, so complete once it exists
    if (in) {
      std::string line;
      while (std::getline(in, line)) {
        if (absl::StartsWith(line, "grpc=")) process->address_ = line.substr(5);
        if (absl::StartsWith(line, "metrics=")) process->metrics_ = line.substr(8);
        if (absl::StartsWith(line, "shm=")) process->shm_ = line.substr(4);
      }
      if (process->address_.empty() || process->metrics_.empty()) {
        return absl::InternalError(absl::StrCat("ready file ", ready_file, " lacks an address"));
      }
      return process;
    }
    if (Clock::now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("kvcomp-server not ready after ", timeout_seconds, " s"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

absl::StatusOr<int> ServerProcess::Stop(double timeout_seconds) {
  if (reaped_) return absl::FailedPreconditionError("kvcomp-server already stopped");
  ::kill(pid_, SIGTERM);
  int status = 0;
  const Clock::time_point deadline =
      Clock::now() +
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout_seconds));
  if (!WaitUntil(pid_, deadline, &status)) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status, 0);
  }
  reaped_ = true;
  return status;
}

ServerProcess::~ServerProcess() {
  if (!reaped_) (void)Stop();
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

std::string ServerProcess::TempSocketPath(const std::string& name) {
  // Short: a Unix socket path has room for 107 bytes.
  const std::string dir = "/tmp/kvcomp-shm-" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  return dir + "/" + name;
}

int OpenFdCount(pid_t pid) {
  std::error_code error;
  int n = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", error);
       !error && it != std::filesystem::directory_iterator(); it.increment(error)) {
    ++n;
  }
  return error ? -1 : n;
}

int MappingCount(pid_t pid, const std::string& needle) {
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  int n = 0;
  for (std::string line; std::getline(maps, line);) n += line.find(needle) != std::string::npos;
  return n;
}

int64_t ProcStatusKiB(pid_t pid, const std::string& field) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  const std::string key = field + ":";
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(key, 0) == 0) return std::stoll(line.substr(key.size()));
  }
  return -1;
}

}  // namespace kvcomp::testing

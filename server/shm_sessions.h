// Who owns which shared-memory region. A client's identity is its connection to the
// shared-memory socket (shm_socket.h): connecting opens a session with a random token, which
// the client sends with each gRPC call as the `kvcomp-shm-session` metadata; closing it (or
// the client dying, which closes it) ends the session and unregisters its regions. Regions are
// named per session, so clients never see or name each other's. Limits (per client: sessions,
// regions, mapped bytes, fds waiting to be registered) keep one client from taking the server's
// address space or fds.
//
// Registration, Triton style: the client passes a memfd over its socket (AddFd), which answers
// with a key ("fd:3"); SystemSharedMemoryRegister(name, key, offset, byte_size) then maps it
// (SharedRegion::Map) under `name`. Thread-safe.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "server/shm_region.h"

namespace kvcomp::server {

struct ShmLimits {
  int max_clients = 64;
  int max_regions_per_client = 64;
  uint64_t max_bytes_per_client = uint64_t{64} << 30;
  int max_pending_fds_per_client = 16;  // passed but not yet registered
};

class ShmSessions {
 public:
  explicit ShmSessions(ShmLimits limits) : limits_(limits) {}
  ~ShmSessions();  // closes every fd still waiting

  // A new session for a client (pid and uid from its socket's credentials, for the log): its
  // token, or RESOURCE_EXHAUSTED at max_clients.
  absl::StatusOr<std::string> Open(pid_t pid, uid_t uid);
  // Ends a session: its regions are unregistered (and unmapped once no call holds them), its
  // waiting fds closed.
  void Close(const std::string& token);

  // Takes `fd` (closed on failure too) as waiting to be registered: its key.
  absl::StatusOr<std::string> AddFd(const std::string& token, int fd);

  // SystemSharedMemoryRegister / Unregister / Status for the session `token`. Unregister with an
  // empty name unregisters every region of the session.
  absl::Status Register(const std::string& token, const std::string& name, const std::string& key,
                        uint64_t offset, uint64_t byte_size);
  absl::Status Unregister(const std::string& token, const std::string& name);
  absl::StatusOr<std::vector<std::shared_ptr<const SharedRegion>>> Status(
      const std::string& token, const std::string& name) const;

  // The region `name` of session `token`, held for as long as the caller keeps it.
  absl::StatusOr<std::shared_ptr<const SharedRegion>> Find(const std::string& token,
                                                           const std::string& name) const;

  // Sessions and fds now (for tests and the log).
  int sessions() const;

 private:
  struct Session {
    pid_t pid = 0;
    uid_t uid = 0;
    uint64_t next_fd = 0;
    std::map<std::string, int> fds;  // key -> fd waiting to be registered
    std::map<std::string, std::shared_ptr<const SharedRegion>> regions;
    uint64_t bytes = 0;  // mapped by its regions
  };
  // The session of `token`, or INVALID_ARGUMENT (mu_ held).
  absl::StatusOr<Session*> Get(const std::string& token) const;
  // Whether `s` may register `name` of `byte_size` bytes: a valid name not taken, within the
  // per-client limits (mu_ held).
  absl::Status CheckRoom(const Session& s, const std::string& name, uint64_t byte_size) const;

  const ShmLimits limits_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::unique_ptr<Session>> sessions_;
};

}  // namespace kvcomp::server

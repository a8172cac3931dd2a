// The shared-memory socket: a Unix SOCK_SEQPACKET listener beside the gRPC one, through which
// clients pass memfds (gRPC cannot carry file descriptors). Each connection is one client's
// session (shm_sessions.h); one thread serves them all with poll(), and a connection closing
// (the client exiting or being killed) ends its session.
//
// Protocol, one message each way, text but for the fd:
//   on connect, server:  "KVCOMP-SHM 1 <token>\n"          (or "ERR <why>\n", then it closes)
//   client: "FD" with one fd attached (SCM_RIGHTS)
//   server: "OK <key>\n" (pass the key to SystemSharedMemoryRegister) or "ERR <why>\n"
// Anything else gets "ERR <why>\n". A message carrying other control data, or more than one fd,
// is refused, and every fd it carried is closed.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "server/shm_sessions.h"

namespace kvcomp::server {

class ShmSocketServer {
 public:
  // Binds `path` (mode 0600 unless `mode` says otherwise; a stale socket file nobody listens on
  // is replaced, a live one is an error) and starts serving. `sessions` must outlive the server.
  static absl::StatusOr<std::unique_ptr<ShmSocketServer>> Start(const std::string& path,
                                                                unsigned mode,
                                                                ShmSessions* sessions);
  // Stops serving, closes every connection (ending its session) and removes the socket file.
  ~ShmSocketServer();

 private:
  ShmSocketServer(std::string path, int listener, int wake, ShmSessions* sessions);
  void Loop();
  void Accept();
  // Serves one message on `fd`; false when the connection is done.
  bool Serve(int fd, const std::string& token);

  const std::string path_;
  const int listener_;
  const int wake_;  // an eventfd: written to stop the loop
  ShmSessions* const sessions_;
  std::map<int, std::string> connections_;  // fd -> session token (loop thread only)
  std::thread thread_;
};

}  // namespace kvcomp::server

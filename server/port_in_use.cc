#include "server/port_in_use.h"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace kvcomp::server {
namespace {

// Splits "host:port" and "[v6]:port"; false for anything else (unix:, no port).
bool SplitHostPort(const std::string& listen, std::string* host, std::string* port) {
  if (absl::StartsWith(listen, "unix:")) return false;
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon + 1 == listen.size()) return false;
  *host = listen.substr(0, colon);
  *port = listen.substr(colon + 1);
  if (host->size() >= 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  return true;
}

}  // namespace

absl::Status CheckPortNotInUse(const std::string& listen) {
  std::string host;
  std::string port;
  if (!SplitHostPort(listen, &host, &port) || port == "0") return absl::OkStatus();
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &found) != 0) {
    return absl::OkStatus();
  }
  absl::Status status = absl::OkStatus();
  for (const addrinfo* a = found; a != nullptr && status.ok(); a = a->ai_next) {
    const int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    // SO_REUSEADDR as gRPC sets it, so a port left in TIME_WAIT is not mistaken for one in use.
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, a->ai_addr, a->ai_addrlen) != 0 && errno == EADDRINUSE) {
      status = absl::FailedPreconditionError(
          absl::StrCat("port ", port, " of ", listen, " is in use by another process"));
    }
    close(fd);
  }
  freeaddrinfo(found);
  return status;
}

}  // namespace kvcomp::server

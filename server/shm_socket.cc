#include "server/shm_socket.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"

namespace kvcomp::server {
namespace {

constexpr size_t kMaxMessage = 256;

absl::StatusOr<sockaddr_un> Address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("--shm-socket ", path, ": a path of 1 to ",
                                                   sizeof(addr.sun_path) - 1, " bytes"));
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

void Send(int fd, const std::string& message) {
  // A client that does not read its answers only loses them: never block the loop on it.
  (void)::send(fd, message.data(), message.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
}

// Closes every fd an SCM_RIGHTS message carried (all of them, whatever else is wrong).
std::vector<int> PassedFds(msghdr* msg) {
  std::vector<int> fds;
  for (cmsghdr* c = CMSG_FIRSTHDR(msg); c != nullptr; c = CMSG_NXTHDR(msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < n; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      fds.push_back(fd);
    }
  }
  return fds;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ShmSocketServer>> ShmSocketServer::Start(const std::string& path,
                                                                        unsigned mode,
                                                                        ShmSessions* sessions) {
  absl::StatusOr<sockaddr_un> addr = Address(path);
  if (!addr.ok()) return addr.status();
  const auto* sa = reinterpret_cast<const sockaddr*>(&*addr);
  // A socket file left by a server that died: replace it, unless something still answers there.
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat("--shm-socket ", path, " exists and is not a socket"));
    }
    const int probe = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    const bool live = probe >= 0 && ::connect(probe, sa, sizeof(*addr)) == 0;
    if (probe >= 0) ::close(probe);
    if (live) {
      return absl::FailedPreconditionError(
          absl::StrCat("--shm-socket ", path, ": another server is listening there"));
    }
    ::unlink(path.c_str());
  }
  const int listener = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (listener < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  // Owner only until chmod says otherwise: bind under a tight umask, so the file never exists
  // with a looser mode.
  const mode_t old_mask = ::umask(0177);
  const int bound = ::bind(listener, sa, sizeof(*addr));
  const int bind_errno = errno;
  ::umask(old_mask);
  if (bound != 0 || ::chmod(path.c_str(), mode) != 0 || ::listen(listener, 64) != 0) {
    const int e = bound != 0 ? bind_errno : errno;
    ::close(listener);
    return absl::FailedPreconditionError(
        absl::StrCat("--shm-socket ", path, ": ", std::strerror(e)));
  }
  const int wake = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake < 0) {
    ::close(listener);
    ::unlink(path.c_str());
    return absl::InternalError(absl::StrCat("eventfd: ", std::strerror(errno)));
  }
  return std::unique_ptr<ShmSocketServer>(new ShmSocketServer(path, listener, wake, sessions));
}

ShmSocketServer::ShmSocketServer(std::string path, int listener, int wake, ShmSessions* sessions)
    : path_(std::move(path)), listener_(listener), wake_(wake), sessions_(sessions) {
  thread_ = std::thread([this] { Loop(); });
}

ShmSocketServer::~ShmSocketServer() {
  const uint64_t one = 1;
  (void)!::write(wake_, &one, sizeof(one));
  thread_.join();
  for (auto& [fd, token] : connections_) {
    sessions_->Close(token);
    ::close(fd);
  }
  ::close(listener_);
  ::close(wake_);
  ::unlink(path_.c_str());
}

void ShmSocketServer::Loop() {
  std::vector<pollfd> polled;
  for (;;) {
    polled.clear();
    polled.push_back({wake_, POLLIN, 0});
    polled.push_back({listener_, POLLIN, 0});
    for (const auto& [fd, token] : connections_) polled.push_back({fd, POLLIN, 0});
    if (::poll(polled.data(), polled.size(), -1) < 0) {
      if (errno == EINTR) continue;
      spdlog::error("shared-memory socket: poll: {}", std::strerror(errno));
      return;
    }
    if (polled[0].revents != 0) return;
    if (polled[1].revents != 0) Accept();
    for (size_t i = 2; i < polled.size(); ++i) {
      if (polled[i].revents == 0) continue;
      const int fd = polled[i].fd;
      if (!Serve(fd, connections_[fd])) {
        sessions_->Close(connections_[fd]);
        connections_.erase(fd);
        ::close(fd);
      }
    }
  }
}

void ShmSocketServer::Accept() {
  const int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (fd < 0) return;  // the client gave up, or no fd left: it sees its connect fail
  ucred cred{};
  socklen_t len = sizeof(cred);
  ::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len);
  absl::StatusOr<std::string> token = sessions_->Open(cred.pid, cred.uid);
  if (!token.ok()) {
    Send(fd, absl::StrCat("ERR ", token.status().message(), "\n"));
    ::close(fd);
    return;
  }
  Send(fd, absl::StrCat("KVCOMP-SHM 1 ", *token, "\n"));
  connections_[fd] = *std::move(token);
}

bool ShmSocketServer::Serve(int fd, const std::string& token) {
  char data[kMaxMessage];
  iovec iov{data, sizeof(data)};
  // Room for one fd; the kernel closes any more that do not fit (and sets MSG_CTRUNC).
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  const ssize_t n = ::recvmsg(fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  if (n < 0) return errno == EAGAIN || errno == EINTR;
  std::vector<int> fds = PassedFds(&msg);
  if (n == 0 && fds.empty()) return false;  // the client closed its end
  const std::string request(data, static_cast<size_t>(n));
  std::string why;
  if (request != "FD" && request != "FD\n") {
    why = "unknown request (send \"FD\" with one fd attached)";
  } else if ((msg.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) != 0 || fds.size() != 1) {
    why = absl::StrCat(
        "\"FD\" must carry exactly one fd (SCM_RIGHTS); it carried ",
        (msg.msg_flags & MSG_CTRUNC) != 0 ? "more than one" : std::to_string(fds.size()));
  }
  if (!why.empty()) {
    for (int f : fds) ::close(f);
    Send(fd, absl::StrCat("ERR ", why, "\n"));
    return true;
  }
  absl::StatusOr<std::string> key = sessions_->AddFd(token, fds[0]);
  Send(fd, key.ok() ? absl::StrCat("OK ", *key, "\n")
                    : absl::StrCat("ERR ", key.status().message(), "\n"));
  return true;
}

}  // namespace kvcomp::server

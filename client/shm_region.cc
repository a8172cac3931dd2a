#include "client/shm_region.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace kvcomp::client {
namespace {

absl::Status Errno(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

// One message from the server: its text, without the newline; an "ERR ..." answer as an error.
absl::StatusOr<std::string> Receive(int socket) {
  char buffer[512];
  ssize_t n;
  do {
    n = ::recv(socket, buffer, sizeof(buffer), 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return Errno("shared-memory socket: recv");
  if (n == 0) return absl::UnavailableError("shared-memory socket: the server closed it");
  absl::string_view text(buffer, static_cast<size_t>(n));
  absl::ConsumeSuffix(&text, "\n");
  const std::string message(text);
  if (absl::StartsWith(message, "ERR ")) {
    const std::string why = message.substr(4);
    return absl::StrContains(why, "--shm-max-clients") ||
                   absl::StrContains(why, "waiting to be registered")
               ? absl::ResourceExhaustedError(why)
               : absl::InvalidArgumentError(why);
  }
  return message;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SharedMemoryRegion>> SharedMemoryRegion::Create(std::string name,
                                                                               uint64_t bytes) {
  if (bytes == 0) return absl::InvalidArgumentError("a shared-memory region needs bytes");
  const int fd = ::memfd_create(("kvcomp:" + name).c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return Errno("memfd_create");
  if (::ftruncate(fd, static_cast<off_t>(bytes)) != 0 ||
      ::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0) {
    const absl::Status s = Errno("sizing and sealing the memfd");
    ::close(fd);
    return s;
  }
  void* data = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (data == MAP_FAILED) {
    const absl::Status s = Errno("mmap");
    ::close(fd);
    return s;
  }
  return std::unique_ptr<SharedMemoryRegion>(
      new SharedMemoryRegion(std::move(name), fd, static_cast<uint8_t*>(data), bytes));
}

SharedMemoryRegion::~SharedMemoryRegion() {
  ::munmap(data_, size_);
  ::close(fd_);
}

absl::StatusOr<std::unique_ptr<ShmSession>> ShmSession::Connect(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("shared-memory socket path '", path,
                                                   "' must be 1 to ", sizeof(addr.sun_path) - 1,
                                                   " bytes"));
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  const int s = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (s < 0) return Errno("socket");
  if (::connect(s, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    const absl::Status e = absl::UnavailableError(absl::StrCat(
        "cannot connect to the shared-memory socket ", path, ": ", std::strerror(errno)));
    ::close(s);
    return e;
  }
  absl::StatusOr<std::string> hello = Receive(s);
  constexpr absl::string_view kHello = "KVCOMP-SHM 1 ";
  if (!hello.ok() || !absl::StartsWith(*hello, kHello)) {
    ::close(s);
    if (!hello.ok()) return hello.status();
    return absl::UnavailableError(absl::StrCat(path, " is not a kvcomp shared-memory socket"));
  }
  return std::unique_ptr<ShmSession>(new ShmSession(s, hello->substr(kHello.size())));
}

ShmSession::~ShmSession() { ::close(socket_); }

absl::StatusOr<std::string> ShmSession::PassFd(int fd) {
  char request[] = "FD";
  iovec iov{request, 2};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  ssize_t sent;
  do {
    sent = ::sendmsg(socket_, &msg, MSG_NOSIGNAL);
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) return Errno("shared-memory socket: sendmsg");
  absl::StatusOr<std::string> answer = Receive(socket_);
  if (!answer.ok()) return answer.status();
  if (!absl::StartsWith(*answer, "OK ")) {
    return absl::InternalError(
        absl::StrCat("shared-memory socket: unexpected answer '", *answer, "'"));
  }
  return answer->substr(3);
}

}  // namespace kvcomp::client

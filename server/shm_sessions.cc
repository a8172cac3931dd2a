#include "server/shm_sessions.h"

#include <sys/random.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "core/kvcomp/internal/quote.h"
#include "core/kvcomp/internal/status_macros.h"

namespace kvcomp::server {
namespace {

constexpr size_t kMaxNameBytes = 256;

// 128 random bits from the kernel, as hex: what a client must know to name a session.
std::string NewToken() {
  char bytes[16];
  size_t got = 0;
  while (got < sizeof(bytes)) {
    const ssize_t n = ::getrandom(bytes + got, sizeof(bytes) - got, 0);
    if (n > 0) got += static_cast<size_t>(n);
  }
  return absl::BytesToHexString(absl::string_view(bytes, sizeof(bytes)));
}

}  // namespace

ShmSessions::~ShmSessions() {
  for (auto& [token, session] : sessions_) {
    for (auto& [key, fd] : session->fds) ::close(fd);
  }
}

absl::StatusOr<ShmSessions::Session*> ShmSessions::Get(const std::string& token) const {
  if (token.empty()) {
    return absl::InvalidArgumentError(
        "no shared-memory session: connect to the server's --shm-socket and send the token it "
        "gives as the kvcomp-shm-session metadata");
  }
  auto it = sessions_.find(token);
  if (it == sessions_.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown shared-memory session ", Quote(token, 8),
                     " (its socket connection has closed, or it never existed)"));
  }
  return it->second.get();
}

absl::StatusOr<std::string> ShmSessions::Open(pid_t pid, uid_t uid) {
  std::lock_guard<std::mutex> lock(mu_);
  if (static_cast<int>(sessions_.size()) >= limits_.max_clients) {
    return absl::ResourceExhaustedError(absl::StrCat("the server serves ", limits_.max_clients,
                                                     " shared-memory clients already "
                                                     "(--shm-max-clients)"));
  }
  std::string token = NewToken();
  auto session = std::make_unique<Session>();
  session->pid = pid;
  session->uid = uid;
  sessions_[token] = std::move(session);
  spdlog::debug("shared-memory session {}... opened by pid {} uid {}", token.substr(0, 8), pid,
                uid);
  return token;
}

void ShmSessions::Close(const std::string& token) {
  std::map<std::string, std::shared_ptr<const SharedRegion>> regions;  // released unlocked
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = sessions_.find(token);
    if (it == sessions_.end()) return;
    for (auto& [key, fd] : it->second->fds) ::close(fd);
    regions.swap(it->second->regions);
    spdlog::debug("shared-memory session {}... of pid {} closed; {} region(s) released",
                  token.substr(0, 8), it->second->pid, regions.size());
    sessions_.erase(it);
  }
}

absl::StatusOr<std::string> ShmSessions::AddFd(const std::string& token, int fd) {
  std::lock_guard<std::mutex> lock(mu_);
  absl::StatusOr<Session*> session = Get(token);
  if (session.ok() &&
      static_cast<int>((*session)->fds.size()) >= limits_.max_pending_fds_per_client) {
    session = absl::ResourceExhaustedError(absl::StrCat(
        limits_.max_pending_fds_per_client,
        " fds are already waiting to be registered (SystemSharedMemoryRegister with their keys)"));
  }
  if (!session.ok()) {
    ::close(fd);
    return session.status();
  }
  std::string key = absl::StrCat("fd:", (*session)->next_fd++);
  (*session)->fds[key] = fd;
  return key;
}

absl::Status ShmSessions::Register(const std::string& token, const std::string& name,
                                   const std::string& key, uint64_t offset, uint64_t byte_size) {
  int fd = -1;
  {
    std::lock_guard<std::mutex> lock(mu_);
    absl::StatusOr<Session*> session = Get(token);
    if (!session.ok()) return session.status();
    Session& s = **session;
    // A key serves one registration, whatever its outcome: a refused fd is closed at once, so
    // nothing a failed call passed stays open.
    auto it = s.fds.find(key);
    if (it == s.fds.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("region ", Quote(name), ": unknown key ", Quote(key),
                       " (a key is what the shared-memory socket answered to a passed fd, and "
                       "serves one registration)"));
    }
    fd = it->second;
    s.fds.erase(it);
    absl::Status refused = CheckRoom(s, name, byte_size);
    if (!refused.ok()) {
      ::close(fd);
      return refused;
    }
  }
  // Mapped unlocked; Map closes the fd, whatever happens.
  absl::StatusOr<std::shared_ptr<SharedRegion>> region =
      SharedRegion::Map(fd, name, key, offset, byte_size);
  if (!region.ok()) return region.status();
  std::lock_guard<std::mutex> lock(mu_);
  absl::StatusOr<Session*> session = Get(token);  // it may have closed meanwhile
  if (!session.ok()) return session.status();
  Session& s = **session;
  KV_RETURN_IF_ERROR(CheckRoom(s, name, byte_size));  // another registration may have come first
  s.bytes += byte_size;
  s.regions[name] = *std::move(region);
  return absl::OkStatus();
}

absl::Status ShmSessions::CheckRoom(const Session& s, const std::string& name,
                                    uint64_t byte_size) const {
  if (name.empty() || name.size() > kMaxNameBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("region name ", Quote(name), " must be 1 to ", kMaxNameBytes, " bytes"));
  }
  if (s.regions.count(name) > 0) {
    return absl::AlreadyExistsError(
        absl::StrCat("region ", Quote(name), " is already registered; unregister it first"));
  }
  if (static_cast<int>(s.regions.size()) >= limits_.max_regions_per_client) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "region ", Quote(name), ": this client has ", s.regions.size(),
        " regions registered, the most one client may (--shm-max-regions-per-client)"));
  }
  if (byte_size > limits_.max_bytes_per_client - s.bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("region ", Quote(name), ": ", byte_size, " bytes more than the ", s.bytes,
                     " this client has registered would pass its limit of ",
                     limits_.max_bytes_per_client, " (--shm-max-bytes-per-client)"));
  }
  return absl::OkStatus();
}

absl::Status ShmSessions::Unregister(const std::string& token, const std::string& name) {
  std::vector<std::shared_ptr<const SharedRegion>> released;  // unmapped unlocked
  std::lock_guard<std::mutex> lock(mu_);
  absl::StatusOr<Session*> session = Get(token);
  if (!session.ok()) return session.status();
  Session& s = **session;
  for (auto it = s.regions.begin(); it != s.regions.end();) {
    if (name.empty() || it->first == name) {
      s.bytes -= it->second->size();
      released.push_back(std::move(it->second));
      it = s.regions.erase(it);
    } else {
      ++it;
    }
  }
  if (!name.empty() && released.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown region ", Quote(name), ": not registered by this client"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::shared_ptr<const SharedRegion>>> ShmSessions::Status(
    const std::string& token, const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  absl::StatusOr<Session*> session = Get(token);
  if (!session.ok()) return session.status();
  std::vector<std::shared_ptr<const SharedRegion>> out;
  for (const auto& [n, region] : (*session)->regions) {
    if (name.empty() || n == name) out.push_back(region);
  }
  if (!name.empty() && out.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown region ", Quote(name), ": not registered by this client"));
  }
  return out;
}

absl::StatusOr<std::shared_ptr<const SharedRegion>> ShmSessions::Find(
    const std::string& token, const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  absl::StatusOr<Session*> session = Get(token);
  if (!session.ok()) return session.status();
  auto it = (*session)->regions.find(name);
  if (it == (*session)->regions.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown region ", Quote(name), ": not registered by this client"));
  }
  return it->second;
}

int ShmSessions::sessions() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(sessions_.size());
}

}  // namespace kvcomp::server

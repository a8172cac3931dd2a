// Client side of shared memory (same host): a region of memory this process shares with a
// kvcomp-server, and the session that passes it over the server's shared-memory socket.
//
//   KV_ASSIGN_OR_RETURN(auto region, SharedMemoryRegion::Create("kv", 64 << 20));
//   // ... write tensors into region->bytes() ...
//   KV_RETURN_IF_ERROR(client->OpenSharedMemory("/run/kvcomp/shm.sock"));
//   KV_RETURN_IF_ERROR(client->RegisterRegion(*region));
//
// A region is a memfd sealed against shrinking and growing (F_SEAL_SHRINK | F_SEAL_GROW), which
// the server requires (docs/RELIABILITY.md): nothing this process does to it can then fault the
// server. It stays mapped here until destroyed; the server keeps its own mapping until the region
// is unregistered or the session ends.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace kvcomp::client {

class SharedMemoryRegion {
 public:
  // A new memfd of `bytes` (zero-filled), sealed, mapped read-write in this process.
  static absl::StatusOr<std::unique_ptr<SharedMemoryRegion>> Create(std::string name,
                                                                    uint64_t bytes);
  ~SharedMemoryRegion();
  SharedMemoryRegion(const SharedMemoryRegion&) = delete;
  SharedMemoryRegion& operator=(const SharedMemoryRegion&) = delete;

  const std::string& name() const { return name_; }
  int fd() const { return fd_; }
  absl::Span<uint8_t> bytes() const { return {data_, size_}; }

 private:
  SharedMemoryRegion(std::string name, int fd, uint8_t* data, size_t size)
      : name_(std::move(name)), fd_(fd), data_(data), size_(size) {}
  std::string name_;
  int fd_;
  uint8_t* data_;
  size_t size_;
};

// A connection to the server's shared-memory socket: the client's identity for its regions.
// Closing it (or this process ending) makes the server release every region it registered.
class ShmSession {
 public:
  // Connects and reads the server's greeting: UNAVAILABLE when nothing listens at `path`,
  // RESOURCE_EXHAUSTED when the server serves its most clients already.
  static absl::StatusOr<std::unique_ptr<ShmSession>> Connect(const std::string& path);
  ~ShmSession();
  ShmSession(const ShmSession&) = delete;
  ShmSession& operator=(const ShmSession&) = delete;

  // The token every call naming a region sends as the `kvcomp-shm-session` metadata.
  const std::string& token() const { return token_; }
  // Passes `fd` (this process keeps its own) to the server: the key to register it under.
  absl::StatusOr<std::string> PassFd(int fd);

 private:
  ShmSession(int socket, std::string token) : socket_(socket), token_(std::move(token)) {}
  int socket_;
  std::string token_;
};

}  // namespace kvcomp::client

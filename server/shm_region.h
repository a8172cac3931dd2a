// A client's shared-memory region, mapped into the server: a byte range of a memfd the client
// passed over the shared-memory socket (shm_socket.h), checked so that nothing the client does
// to it later can fault the server (docs/RELIABILITY.md, "Shared memory: threat model"):
//  - it must be a memfd (tmpfs, not hugetlbfs: a hugetlbfs page that cannot be had is a SIGBUS)
//    sealed with F_SEAL_SHRINK, so the file can never shrink under the mapping, and the range
//    must lie inside the file as it is at registration;
//  - it is writable by the server only when neither seals nor the fd's mode forbid writing.
// The mapping lives as long as the object; calls hold it by shared_ptr, so a region unregistered
// (or whose client went away) mid-call is unmapped when the last call using it has finished.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace kvcomp::server {

class SharedRegion {
 public:
  // Maps [offset, offset + byte_size) of the file `fd` (which it closes, whatever the outcome).
  // INVALID_ARGUMENT says what is wrong: not a memfd, not sealed against shrinking, the range
  // past the file's end or empty.
  static absl::StatusOr<std::shared_ptr<SharedRegion>> Map(int fd, std::string name,
                                                           std::string key, uint64_t offset,
                                                           uint64_t byte_size);
  ~SharedRegion();
  SharedRegion(const SharedRegion&) = delete;
  SharedRegion& operator=(const SharedRegion&) = delete;

  const std::string& name() const { return name_; }
  const std::string& key() const { return key_; }
  uint64_t offset() const { return offset_; }  // in the file
  uint64_t size() const { return size_; }
  bool writable() const { return writable_; }
  // The region's bytes. Another process may write them at any time: read them into private
  // memory before trusting what they say, and never read back what was written.
  uint8_t* data() const { return data_; }

 private:
  SharedRegion() = default;
  std::string name_, key_;
  uint64_t offset_ = 0, size_ = 0;
  bool writable_ = false;
  void* mapping_ = nullptr;
  size_t mapping_bytes_ = 0;
  uint8_t* data_ = nullptr;
};

}  // namespace kvcomp::server

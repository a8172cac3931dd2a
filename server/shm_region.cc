#include "server/shm_region.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/kvcomp/internal/quote.h"

namespace kvcomp::server {
namespace {

// Closes an fd when it goes out of scope.
struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd >= 0) ::close(fd);
  }
};

absl::Status Refused(const std::string& name, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("region ", Quote(name), ": ", why));
}

}  // namespace

absl::StatusOr<std::shared_ptr<SharedRegion>> SharedRegion::Map(int fd, std::string name,
                                                                std::string key, uint64_t offset,
                                                                uint64_t byte_size) {
  FdCloser closer{fd};
  struct stat st;
  struct statfs fs;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || ::fstatfs(fd, &fs) != 0) {
    return Refused(name, "the file is not a memfd (not a regular file)");
  }
  if (static_cast<uint64_t>(fs.f_type) == HUGETLBFS_MAGIC) {
    // A hugetlbfs page the kernel cannot find when it is first touched is a SIGBUS.
    return Refused(name, "hugetlbfs memfds (MFD_HUGETLB) are not served; use a plain memfd");
  }
  const int seals = ::fcntl(fd, F_GET_SEALS);
  if (static_cast<uint64_t>(fs.f_type) != TMPFS_MAGIC || seals < 0) {
    return Refused(name, "the file is not a memfd (memfd_create with MFD_ALLOW_SEALING)");
  }
  if ((seals & F_SEAL_SHRINK) == 0) {
    // A file that can shrink under the mapping turns the server's next read of it into a SIGBUS.
    return Refused(name,
                   "the memfd is not sealed against shrinking: fcntl(fd, F_ADD_SEALS, "
                   "F_SEAL_SHRINK) before passing it (an unsealed file could be truncated under "
                   "the server)");
  }
  if (byte_size == 0) return Refused(name, "byte_size is 0");
  const uint64_t file_bytes = static_cast<uint64_t>(st.st_size);
  if (offset > file_bytes || byte_size > file_bytes - offset) {
    return Refused(name, absl::StrCat("offset ", offset, " + byte_size ", byte_size,
                                      " is past the end of the memfd (", file_bytes, " bytes)"));
  }
  const bool fd_writable = (::fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDWR;
  const bool writable = fd_writable && (seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)) == 0;
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  const uint64_t start = offset / page * page;
  const size_t bytes = static_cast<size_t>(offset - start + byte_size);
  void* mapping = ::mmap(nullptr, bytes, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED,
                         fd, static_cast<off_t>(start));
  if (mapping == MAP_FAILED) {
    const int e = errno;
    return e == ENOMEM ? absl::ResourceExhaustedError(absl::StrCat(
                             "region ", Quote(name), ": cannot map ", byte_size, " bytes"))
                       : Refused(name, absl::StrCat("mmap failed: ", std::strerror(e)));
  }
  std::shared_ptr<SharedRegion> region(new SharedRegion());
  region->name_ = std::move(name);
  region->key_ = std::move(key);
  region->offset_ = offset;
  region->size_ = byte_size;
  region->writable_ = writable;
  region->mapping_ = mapping;
  region->mapping_bytes_ = bytes;
  region->data_ = static_cast<uint8_t*>(mapping) + (offset - start);
  return region;
}

SharedRegion::~SharedRegion() {
  if (mapping_ != nullptr) ::munmap(mapping_, mapping_bytes_);
}

}  // namespace kvcomp::server

#include "client/io/file_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>

#include "absl/strings/str_cat.h"

namespace kvcomp::io {
namespace {

// Splits "dir/name" into {"dir", "name"}; a bare name lives in ".".
std::pair<std::string, std::string> SplitPath(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  const size_t slash = p.rfind('/');
  if (slash == std::string::npos) return {".", p};
  if (slash == 0) return {"/", p.substr(1)};
  return {p.substr(0, slash), p.substr(slash + 1)};
}

absl::Status FsyncPath(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "open", path);
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  // Some file systems cannot fsync a directory; that is not a data-loss risk we can fix.
  if (rc != 0 && err != EINVAL && err != EROFS) return ErrnoStatus(err, "fsync", path);
  return absl::OkStatus();
}

absl::Status WriteAll(int fd, absl::Span<const uint8_t> data, const std::string& path) {
  const uint8_t* p = data.data();
  size_t left = data.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, std::min<size_t>(left, size_t{1} << 30));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "write", path);
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

// Temporary outputs not yet renamed into place (see RemovePendingTemporariesForExit). A
// temporary is created and registered under the lock, so none can escape a removal.
struct PendingTemporaries {
  std::mutex mu;
  std::map<std::string, bool> paths;  // path -> is a directory
};

PendingTemporaries& Pending() {
  static auto* pending = new PendingTemporaries;
  return *pending;
}

void ForgetTemporary(const std::string& path) {
  std::lock_guard<std::mutex> lock(Pending().mu);
  Pending().paths.erase(path);
}

}  // namespace

int RemovePendingTemporariesForExit() {
  Pending().mu.lock();  // never unlocked: no temporary may be made after this
  int removed = 0;
  for (const auto& [path, is_dir] : Pending().paths) {
    std::error_code ec;
    if (is_dir ? std::filesystem::remove_all(path, ec) > 0 : ::unlink(path.c_str()) == 0) {
      ++removed;
    }
  }
  return removed;
}

absl::Status ErrnoStatus(int err, absl::string_view what, absl::string_view path) {
  const std::string msg = absl::StrCat(what, " ", path, ": ", std::strerror(err));
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return absl::NotFoundError(msg);
    case EACCES:
    case EPERM:
    case EROFS:
      return absl::PermissionDeniedError(msg);
    case EEXIST:
    case ENOTEMPTY:
      return absl::AlreadyExistsError(msg);
    case ENOSPC:
    case EFBIG:
    case EDQUOT:
    case ENOMEM:
      return absl::ResourceExhaustedError(msg);
    default:
      return absl::InternalError(msg);
  }
}

bool PathExists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

bool IsDirectory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

absl::StatusOr<std::vector<uint8_t>> ReadFileBytes(const std::string& path, uint64_t max_bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "open", path);
  std::unique_ptr<int, void (*)(int*)> closer(new int(fd), [](int* f) {
    ::close(*f);
    delete f;
  });
  struct stat st;
  if (::fstat(fd, &st) != 0) return ErrnoStatus(errno, "stat", path);
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is not a regular file"));
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size > max_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat(path, " is ", size, " bytes, above the limit of ", max_bytes));
  }
  std::vector<uint8_t> out(size);
  size_t got = 0;
  while (got < size) {
    const ssize_t n = ::read(fd, out.data() + got, size - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "read", path);
    }
    if (n == 0) {
      return absl::DataLossError(absl::StrCat(path, " shrank while being read"));
    }
    got += static_cast<size_t>(n);
  }
  return out;
}

absl::StatusOr<std::unique_ptr<AtomicFile>> AtomicFile::Open(const std::string& path) {
  auto [dir, name] = SplitPath(path);
  if (name.empty() || name == "." || name == "..") {
    return absl::InvalidArgumentError(absl::StrCat("not a file path: '", path, "'"));
  }
  if (IsDirectory(path)) {
    return absl::AlreadyExistsError(absl::StrCat(path, " is a directory"));
  }
  std::string temp = absl::StrCat(dir, "/.", name, ".tmp.XXXXXX");
  int fd;
  {
    std::lock_guard<std::mutex> lock(Pending().mu);
    fd = ::mkostemp(temp.data(), O_CLOEXEC);
    if (fd >= 0) Pending().paths.emplace(temp, false);
  }
  if (fd < 0) return ErrnoStatus(errno, "create temporary file in", dir);
  // mkostemp creates 0600; give the result the usual permissions of a new file.
  const mode_t mask = ::umask(0);
  ::umask(mask);
  ::fchmod(fd, 0666 & ~mask);
  return std::unique_ptr<AtomicFile>(new AtomicFile(path, std::move(temp), fd));
}

AtomicFile::~AtomicFile() {
  if (!committed_) Abort();
}

void AtomicFile::Abort() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (!temp_path_.empty()) {
    ::unlink(temp_path_.c_str());
    ForgetTemporary(temp_path_);
    temp_path_.clear();
  }
}

absl::Status AtomicFile::Write(absl::Span<const uint8_t> data) {
  if (fd_ < 0) return absl::FailedPreconditionError("write to a closed AtomicFile");
  absl::Status s = WriteAll(fd_, data, temp_path_);
  if (!s.ok()) Abort();
  return s;
}

absl::Status AtomicFile::Commit() {
  if (fd_ < 0) return absl::FailedPreconditionError("commit of a closed AtomicFile");
  if (::fsync(fd_) != 0) {
    absl::Status s = ErrnoStatus(errno, "fsync", temp_path_);
    Abort();
    return s;
  }
  if (::close(fd_) != 0) {
    fd_ = -1;
    absl::Status s = ErrnoStatus(errno, "close", temp_path_);
    Abort();
    return s;
  }
  fd_ = -1;
  if (::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    absl::Status s = ErrnoStatus(errno, "rename to", path_);
    Abort();
    return s;
  }
  committed_ = true;
  ForgetTemporary(temp_path_);
  temp_path_.clear();
  return FsyncPath(SplitPath(path_).first, O_RDONLY | O_DIRECTORY);
}

absl::Status WriteFileAtomic(const std::string& path,
                             const std::function<absl::Status(Sink&)>& fill) {
  auto file = AtomicFile::Open(path);
  if (!file.ok()) return file.status();
  if (absl::Status s = fill(**file); !s.ok()) return s;
  return (*file)->Commit();
}

absl::Status WriteFileAtomic(const std::string& path, absl::Span<const uint8_t> data) {
  return WriteFileAtomic(path, [&](Sink& sink) { return sink.Write(data); });
}

absl::Status WriteFileDurable(const std::string& path, absl::Span<const uint8_t> data) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) return ErrnoStatus(errno, "create", path);
  absl::Status s = WriteAll(fd, data, path);
  if (s.ok() && ::fsync(fd) != 0) s = ErrnoStatus(errno, "fsync", path);
  if (::close(fd) != 0 && s.ok()) s = ErrnoStatus(errno, "close", path);
  return s;
}

absl::Status WriteDirAtomic(const std::string& path,
                            const std::function<absl::Status(const std::string&)>& fill) {
  auto [parent, name] = SplitPath(path);
  if (name.empty() || name == "." || name == "..") {
    return absl::InvalidArgumentError(absl::StrCat("not a directory path: '", path, "'"));
  }
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) {
      return absl::AlreadyExistsError(absl::StrCat(path, " exists and is not a directory"));
    }
    std::error_code ec;
    if (!std::filesystem::is_empty(path, ec) || ec) {
      return absl::AlreadyExistsError(absl::StrCat(path, " exists and is not empty"));
    }
  }
  std::string temp = absl::StrCat(parent, "/.", name, ".tmp.XXXXXX");
  {
    std::lock_guard<std::mutex> lock(Pending().mu);
    if (::mkdtemp(temp.data()) == nullptr) {
      return ErrnoStatus(errno, "create temporary directory in", parent);
    }
    Pending().paths.emplace(temp, true);
  }
  const mode_t mask = ::umask(0);
  ::umask(mask);
  ::chmod(temp.c_str(), 0777 & ~mask);
  auto cleanup = [&temp] {
    std::error_code ec;
    std::filesystem::remove_all(temp, ec);
  };
  absl::Status s = fill(temp);
  if (s.ok()) s = FsyncPath(temp, O_RDONLY | O_DIRECTORY);
  if (s.ok() && ::rename(temp.c_str(), path.c_str()) != 0) {
    s = ErrnoStatus(errno, "rename to", path);
  }
  if (!s.ok()) cleanup();
  ForgetTemporary(temp);
  if (!s.ok()) return s;
  return FsyncPath(parent, O_RDONLY | O_DIRECTORY);
}

}  // namespace kvcomp::io

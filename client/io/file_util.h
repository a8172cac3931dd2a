// Whole-file reads and atomic writes. Every output of the client is written to a temporary
// name in the destination's own directory, flushed with fsync, then renamed into place, so a
// reader sees either the old file or the complete new one, and a failure leaves nothing.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace kvcomp::io {

// Reads a whole regular file. Fails with INVALID_ARGUMENT for a non-regular file,
// RESOURCE_EXHAUSTED above `max_bytes`, NOT_FOUND / PERMISSION_DENIED etc. from errno.
absl::StatusOr<std::vector<uint8_t>> ReadFileBytes(const std::string& path,
                                                   uint64_t max_bytes = uint64_t{1} << 40);

// An absl::Status from errno, naming the operation and the path.
absl::Status ErrnoStatus(int err, absl::string_view what, absl::string_view path);

// Where bytes go: a file being written atomically, or memory (for tests and archives).
class Sink {
 public:
  virtual ~Sink() = default;
  virtual absl::Status Write(absl::Span<const uint8_t> data) = 0;
};

class VectorSink : public Sink {
 public:
  absl::Status Write(absl::Span<const uint8_t> data) override {
    bytes.insert(bytes.end(), data.begin(), data.end());
    return absl::OkStatus();
  }
  std::vector<uint8_t> bytes;
};

// A file written atomically. Open() creates ".<name>.tmp.XXXXXX" next to `path`; Commit()
// fsyncs, renames over `path` and fsyncs the directory. Destroying an uncommitted file (or
// any failed Write/Commit) removes the temporary file.
class AtomicFile : public Sink {
 public:
  static absl::StatusOr<std::unique_ptr<AtomicFile>> Open(const std::string& path);
  ~AtomicFile() override;
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  absl::Status Write(absl::Span<const uint8_t> data) override;
  absl::Status Commit();
  const std::string& temp_path() const { return temp_path_; }

 private:
  AtomicFile(std::string path, std::string temp_path, int fd)
      : path_(std::move(path)), temp_path_(std::move(temp_path)), fd_(fd) {}
  void Abort();
  std::string path_;
  std::string temp_path_;
  int fd_ = -1;
  bool committed_ = false;
};

// Writes `path` atomically from whatever `fill` writes into the sink.
absl::Status WriteFileAtomic(const std::string& path,
                             const std::function<absl::Status(Sink&)>& fill);
absl::Status WriteFileAtomic(const std::string& path, absl::Span<const uint8_t> data);

// Creates a directory atomically: `fill` populates a fresh temporary directory
// ".<name>.tmp.XXXXXX" beside `path` (files written there need no atomicity of their own),
// then every file and the directory are fsynced and it is renamed to `path`. `path` must not
// exist, or be an empty directory. On failure the temporary directory is removed.
absl::Status WriteDirAtomic(const std::string& path,
                            const std::function<absl::Status(const std::string& tmp_dir)>& fill);

// Writes a plain file (no rename) and fsyncs it: for files inside a WriteDirAtomic directory.
absl::Status WriteFileDurable(const std::string& path, absl::Span<const uint8_t> data);

// Removes every temporary file and folder of an output not yet renamed into place (an
// AtomicFile or a WriteDirAtomic under way) and returns how many it removed. For a process
// about to exit on a signal: afterwards no temporary can be made (making one blocks forever).
int RemovePendingTemporariesForExit();

// True when `path` exists (as anything).
bool PathExists(const std::string& path);
bool IsDirectory(const std::string& path);

}  // namespace kvcomp::io

// Helpers for client tests: temp dirs, running processes (python3 with numpy, the CLI),
// and file comparison.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "client/io/kv_tensor.h"

namespace kvcomp::testing {

// The real KV dumps (../shared/kv); empty string when absent.
std::string SharedKvDir();

// A fresh directory under $TMPDIR, removed (recursively) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct ProcessResult {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;
  std::string out;
  std::string err;
};

struct RunOptions {
  uint64_t file_size_limit = 0;  // RLIMIT_FSIZE for the child when non-zero (SIGXFSZ ignored)
  int timeout_seconds = 120;
};

// Runs argv[0] with arguments (no shell), capturing stdout and stderr.
ProcessResult Run(const std::vector<std::string>& argv, const RunOptions& options = {});

// Runs `code` with /usr/bin/python3 (the interpreter that has numpy); the test fails when it
// exits non-zero. Returns stdout.
std::string RunPython(const std::string& code);

std::vector<uint8_t> ReadAll(const std::string& path);
inline std::vector<uint8_t> Bytes(std::string_view s) { return {s.begin(), s.end()}; }
void WriteAll(const std::string& path, const std::vector<uint8_t>& bytes);
// Names in `dir` (no . and ..), sorted.
std::vector<std::string> ListDir(const std::string& dir);

// A small deterministic cache: `layers` layers of K and V, shape [heads, tokens, dim].
io::KvCache MakeCache(DType dtype, int layers, int64_t heads, int64_t tokens, int64_t dim,
                      uint32_t seed);

}  // namespace kvcomp::testing

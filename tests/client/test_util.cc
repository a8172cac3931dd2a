#include "tests/client/test_util.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include "core/kvcomp/dtype.h"
#include "gtest/gtest.h"

namespace kvcomp::testing {

std::string SharedKvDir() {
  const std::string dir = KVCOMP_SHARED_KV;
  return std::filesystem::is_directory(dir) ? dir : "";
}

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/kvcomp_client_test.XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  // Restore permissions a test may have removed so that cleanup succeeds.
  for (auto it = std::filesystem::recursive_directory_iterator(path_, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_directory(ec)) ::chmod(it->path().c_str(), 0700);
  }
  ::chmod(path_.c_str(), 0700);
  std::filesystem::remove_all(path_, ec);
}

ProcessResult Run(const std::vector<std::string>& argv, const RunOptions& options) {
  ProcessResult result;
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) std::abort();
  const pid_t pid = ::fork();
  if (pid < 0) std::abort();
  if (pid == 0) {
    ::dup2(out_pipe[1], 1);
    ::dup2(err_pipe[1], 2);
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, 0);
    if (options.file_size_limit) {
      ::signal(SIGXFSZ, SIG_IGN);  // survives exec: writes fail with EFBIG instead
      struct rlimit rl = {options.file_size_limit, options.file_size_limit};
      ::setrlimit(RLIMIT_FSIZE, &rl);
    }
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(options.timeout_seconds);
  struct pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int open_fds = 2;
  bool killed = false;
  while (open_fds > 0) {
    const int rc = ::poll(fds, 2, 200);
    if (rc < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[65536];
      const ssize_t n = ::read(fds[i].fd, buf, sizeof(buf));
      if (n > 0) {
        (i == 0 ? result.out : result.err).append(buf, n);
      } else if (n == 0 || errno != EINTR) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
    if (!killed && std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);  // only the child this call started
      killed = true;
    }
  }
  for (auto& f : fds) {
    if (f.fd >= 0) ::close(f.fd);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.signal = WTERMSIG(status);
  }
  return result;
}

std::string RunPython(const std::string& code) {
  ProcessResult r = Run({"/usr/bin/python3", "-c", code});
  EXPECT_EQ(r.exit_code, 0) << "python failed:\n" << code << "\nstderr:\n" << r.err;
  return r.out;
}

std::vector<uint8_t> ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

void WriteAll(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  ASSERT_TRUE(out.good()) << path;
}

std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

io::KvCache MakeCache(DType dtype, int layers, int64_t heads, int64_t tokens, int64_t dim,
                      uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.f, 1.f);
  io::KvCache cache;
  for (int l = 0; l < layers; ++l) {
    for (Kind kind : {Kind::kKey, Kind::kValue}) {
      io::NamedTensor t;
      t.name = io::CanonicalTensorName(l, kind, 0);
      t.tensor.meta.dtype = dtype;
      t.tensor.meta.layer = l;
      t.tensor.meta.kind = kind;
      t.tensor.meta.shape = {heads, tokens, dim};
      const uint64_t n = t.tensor.meta.NumElements();
      t.tensor.bytes.resize(t.tensor.meta.NumBytes());
      for (uint64_t i = 0; i < n; ++i) {
        const float v = normal(rng) * (kind == Kind::kKey ? 4.f : 1.f);
        if (dtype == DType::kFP32) {
          std::memcpy(t.tensor.bytes.data() + 4 * i, &v, 4);
        } else {
          const uint16_t h = dtype == DType::kFP16 ? FloatToHalfBits(v) : FloatToBf16Bits(v);
          std::memcpy(t.tensor.bytes.data() + 2 * i, &h, 2);
        }
      }
      cache.push_back(std::move(t));
    }
  }
  return cache;
}

}  // namespace kvcomp::testing

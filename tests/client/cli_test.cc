// The kvcomp CLI end to end: the real binary against the real kvcomp-server on loopback.
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <map>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/io/dump.h"
#include "client/io/kv_io.h"
#include "client/io/npz.h"
#include "gtest/gtest.h"
#include "tests/client/test_util.h"
#include "tests/support/http_get.h"
#include "tests/support/prom_text.h"
#include "tests/support/server_process.h"

namespace kvcomp::cli {
namespace {

using kvcomp::testing::ListDir;
using kvcomp::testing::ProcessResult;
using kvcomp::testing::ReadAll;
using kvcomp::testing::Run;
using kvcomp::testing::RunOptions;
using kvcomp::testing::RunPython;
using kvcomp::testing::ServerProcess;
using kvcomp::testing::SharedKvDir;
using kvcomp::testing::TempDir;

const char* kRuns[] = {"story_prose", "technical_prose", "mmlu_fewshot_q1", "generated_greedy"};

// The kvcomp CLI run with `args`.
ProcessResult RunCli(const std::vector<std::string>& args, const RunOptions& options = {}) {
  std::vector<std::string> command = {KVCOMP_CLI_BINARY};
  command.insert(command.end(), args.begin(), args.end());
  return kvcomp::testing::Run(command, options);
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = ServerProcess::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }
  ProcessResult Kvcomp(const std::vector<std::string>& args, const RunOptions& options = {}) {
    return RunCli(args, options);
  }
  ProcessResult Compress(const std::string& in, const std::string& out,
                         std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"compress", in,        "-o",       out,
                                     "--codec",  "zstd(3)", "--server", server_->address()};
    args.insert(args.end(), extra.begin(), extra.end());
    return Kvcomp(args);
  }
  ProcessResult Decompress(const std::string& in, const std::string& out,
                           const RunOptions& options = {}) {
    return Kvcomp({"decompress", in, "-o", out, "--server", server_->address()}, options);
  }
  std::unique_ptr<ServerProcess> server_;
};

// numpy itself checks that every KV array of `a` is present in `b` with identical bytes.
void NumpyExpectSameKvArrays(const std::string& a, const std::string& b) {
  RunPython(absl::StrCat(R"(
import numpy as np
a = np.load(")",
                         a, R"("); b = np.load(")", b, R"(")
keys = [k for k in a.files if k.startswith("layer")]
assert keys, a.files
for k in keys:
    x, y = a[k], b[k]
    assert x.dtype == y.dtype and x.shape == y.shape, (k, x.dtype, y.dtype, x.shape, y.shape)
    assert x.tobytes() == y.tobytes(), k
)"));
}

TEST_F(CliTest, NpzFilesNumpyWroteRoundTripByteIdentical) {
  TempDir tmp;
  std::vector<std::string> inputs;
  const std::string shared = SharedKvDir();
  if (!shared.empty()) {
    for (const char* run : kRuns) {
      inputs.push_back(absl::StrCat(shared, "/", run, ".fp16.npz"));
      inputs.push_back(absl::StrCat(shared, "/", run, ".fp32.npz"));
    }
  }
  // Also an archive written with np.savez_compressed (DEFLATE members).
  RunPython(absl::StrCat(R"(
import numpy as np
rng = np.random.default_rng(1)
np.savez_compressed(")",
                         tmp / "deflated.npz", R"(", **{"layer%d_%s" % (l, kv):
    (rng.standard_normal((8, 100, 16)) * 2).astype("<f2") for l in range(4) for kv in "kv"})
)"));
  inputs.push_back(tmp / "deflated.npz");
  int i = 0;
  for (const std::string& in : inputs) {
    SCOPED_TRACE(in);
    const std::string kvc = tmp / absl::StrCat("c", i, ".kvc");
    const std::string out = tmp / absl::StrCat("back", i++, ".npz");
    ProcessResult c = Compress(in, kvc);
    ASSERT_EQ(c.exit_code, 0) << c.err;
    EXPECT_NE(c.out.find("layer0_k"), std::string::npos) << c.out;
    EXPECT_NE(c.out.find("K total"), std::string::npos) << c.out;
    EXPECT_NE(c.out.find("V total"), std::string::npos) << c.out;
    EXPECT_NE(c.out.find("KV total"), std::string::npos) << c.out;
    ProcessResult d = Decompress(kvc, out);
    ASSERT_EQ(d.exit_code, 0) << d.err;
    // Our reader: same tensors, same bytes, same order.
    auto want = io::ReadNpzFile(in);
    auto got = io::ReadNpzFile(out);
    ASSERT_TRUE(want.ok() && got.ok());
    ASSERT_EQ(got->size(), want->size());
    for (size_t t = 0; t < got->size(); ++t) {
      EXPECT_EQ((*got)[t].name, (*want)[t].name);
      EXPECT_EQ((*got)[t].tensor.meta.shape, (*want)[t].tensor.meta.shape);
      EXPECT_TRUE((*got)[t].tensor.bytes == (*want)[t].tensor.bytes) << (*got)[t].name;
    }
    NumpyExpectSameKvArrays(in, out);
  }
}

TEST_F(CliTest, DumpFolderRoundTripIsByteIdentical) {
  const std::string shared = SharedKvDir();
  if (shared.empty()) GTEST_SKIP() << "../shared/kv is absent";
  TempDir tmp;
  const std::string src = shared + "/story_prose";
  for (const char* dtype : {"fp16", "fp32"}) {
    const std::string kvc = tmp / absl::StrCat(dtype, ".kvc");
    const std::string out = tmp / absl::StrCat("out_", dtype);
    ProcessResult c = Compress(src, kvc, {"--dtype", dtype});
    ASSERT_EQ(c.exit_code, 0) << c.err;
    ProcessResult d = Decompress(kvc, out);
    ASSERT_EQ(d.exit_code, 0) << d.err;
    const std::vector<std::string> files = ListDir(out);
    ASSERT_EQ(files.size(), 11u);
    const auto manifest = nlohmann::json::parse(ReadAll(out + "/manifest.json"));
    EXPECT_EQ(manifest["files"].size(), 10u);
    for (const std::string& f : files) {
      if (f == "manifest.json") continue;
      EXPECT_EQ(f.substr(f.size() - 3), std::string("f") + (dtype + 2)) << f;
      EXPECT_TRUE(ReadAll(out + "/" + f) == ReadAll(src + "/" + f)) << f << " differs";
    }
  }
}

TEST_F(CliTest, InfoPrintsEveryFrameHeaderWithoutAServer) {
  TempDir tmp;
  const io::KvCache cache = kvcomp::testing::MakeCache(DType::kFP16, 3, 4, 50, 8, 6);
  ASSERT_TRUE(io::WriteKvCache(tmp / "in.npz", cache).ok());
  ASSERT_EQ(Compress(tmp / "in.npz", tmp / "c.kvc").exit_code, 0);
  ASSERT_TRUE(server_->Stop().ok());  // info never talks to a server
  ProcessResult info = Kvcomp({"info", tmp / "c.kvc"});
  ASSERT_EQ(info.exit_code, 0) << info.err;
  EXPECT_NE(info.out.find("6 frames"), std::string::npos) << info.out;
  for (const char* want : {"layer0_k", "layer2_v", "FP16", "[4,50,8]", "head-major", "zstd"}) {
    EXPECT_NE(info.out.find(want), std::string::npos) << want << " missing from\n" << info.out;
  }
  // A truncated .kvc is an input error naming the problem.
  std::vector<uint8_t> bytes = ReadAll(tmp / "c.kvc");
  bytes.resize(bytes.size() - 5);
  kvcomp::testing::WriteAll(tmp / "cut.kvc", bytes);
  ProcessResult cut = Kvcomp({"info", tmp / "cut.kvc"});
  EXPECT_EQ(cut.exit_code, 2) << cut.out;
  EXPECT_NE(cut.err.find("cut.kvc"), std::string::npos) << cut.err;
}

// kvcomp codecs: the catalogue offline, and from a real server's ListCodecs RPC, is the same.
TEST_F(CliTest, CodecsListsTheSameCatalogueOfflineAndFromAServer) {
  ProcessResult served = Kvcomp({"codecs", "--json", "--server", server_->address()});
  ASSERT_EQ(served.exit_code, 0) << served.err;
  ProcessResult offline = Kvcomp({"codecs", "--json"});
  ASSERT_EQ(offline.exit_code, 0) << offline.err;
  EXPECT_EQ(served.out, offline.out);
  const nlohmann::json all = nlohmann::json::parse(served.out);
  std::map<std::string, nlohmann::json> by_name;
  for (const auto& e : all) by_name[e["name"].get<std::string>()] = e;
  ASSERT_TRUE(by_name.count("zstd") && by_name.count("lossless-max") && by_name.count("mixed"));
  const nlohmann::json& zstd = by_name["zstd"];
  EXPECT_EQ(zstd["kind"], "stage");
  EXPECT_EQ(zstd["id"], 1);
  EXPECT_EQ(zstd["exactness"], "lossless");
  ASSERT_EQ(zstd["params"].size(), 1u);
  EXPECT_EQ(zstd["params"][0]["name"], "level");
  EXPECT_EQ(zstd["params"][0]["min"], -7);
  EXPECT_EQ(zstd["params"][0]["max"], 22);
  EXPECT_EQ(by_name["quant"]["exactness"], "lossy");
  EXPECT_EQ(by_name["lossless-max"]["kind"], "preset");
  EXPECT_EQ(by_name["lossless-max"]["exactness"], "lossless");
  EXPECT_EQ(by_name["mixed"]["kind"], "policy");
  EXPECT_EQ(by_name["mixed"]["usage"], "mixed(N,FIRST,REST)");

  ProcessResult text = Kvcomp({"codecs"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  for (const char* want :
       {"Stages", "Presets", "Policies", "qhuff", "bounded(cos=", "level: int"}) {
    EXPECT_NE(text.out.find(want), std::string::npos) << want << " missing from\n" << text.out;
  }
  const std::string address = server_->address();
  ASSERT_TRUE(server_->Stop().ok());
  ProcessResult gone = Kvcomp({"codecs", "--server", address, "--timeout", "2"});
  EXPECT_EQ(gone.exit_code, 3) << gone.out;
}

TEST_F(CliTest, ExitCodesAreDistinct) {
  TempDir tmp;
  EXPECT_EQ(Kvcomp({"--help"}).exit_code, 0);
  ProcessResult help = Kvcomp({"compress", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("Exit codes"), std::string::npos);
  EXPECT_EQ(Kvcomp({}).exit_code, 1);
  EXPECT_EQ(Kvcomp({"compress", tmp / "x.npz"}).exit_code, 1);  // no -o
  EXPECT_EQ(Kvcomp({"frobnicate"}).exit_code, 1);
  EXPECT_EQ(Compress(tmp / "missing.npz", tmp / "o.kvc", {"--dtype", "fp8"}).exit_code, 1);
  ProcessResult missing = Compress(tmp / "missing.npz", tmp / "o.kvc");
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("missing.npz"), std::string::npos) << missing.err;
  kvcomp::testing::WriteAll(tmp / "junk.npz", kvcomp::testing::Bytes("not a zip"));
  EXPECT_EQ(Compress(tmp / "junk.npz", tmp / "o.kvc").exit_code, 2);

  const io::KvCache cache = kvcomp::testing::MakeCache(DType::kFP16, 1, 2, 10, 8, 6);
  ASSERT_TRUE(io::WriteKvCache(tmp / "in.npz", cache).ok());
  ProcessResult bad_codec = Kvcomp({"compress", tmp / "in.npz", "-o", tmp / "o.kvc", "--codec",
                                    "nosuchcodec(1)", "--server", server_->address()});
  EXPECT_EQ(bad_codec.exit_code, 3);
  EXPECT_NE(bad_codec.err.find("INVALID_ARGUMENT"), std::string::npos) << bad_codec.err;
  EXPECT_NE(bad_codec.err.find("nosuchcodec"), std::string::npos) << bad_codec.err;
  EXPECT_FALSE(std::filesystem::exists(tmp / "o.kvc"));

  ASSERT_EQ(Compress(tmp / "in.npz", tmp / "o.kvc").exit_code, 0);
  ProcessResult exists = Compress(tmp / "in.npz", tmp / "o.kvc");
  EXPECT_EQ(exists.exit_code, 2);
  EXPECT_NE(exists.err.find("--force"), std::string::npos) << exists.err;
  EXPECT_EQ(Compress(tmp / "in.npz", tmp / "o.kvc", {"--force"}).exit_code, 0);
  EXPECT_EQ(Kvcomp({"health", "--server", server_->address()}).exit_code, 0);

  const std::string address = server_->address();
  ASSERT_TRUE(server_->Stop().ok());
  ProcessResult down = Kvcomp(
      {"decompress", tmp / "o.kvc", "-o", tmp / "back.npz", "--server", address, "--timeout", "5"});
  EXPECT_EQ(down.exit_code, 3);
  EXPECT_NE(down.err.find("UNAVAILABLE"), std::string::npos) << down.err;
  EXPECT_EQ(Kvcomp({"health", "--server", address}).exit_code, 3);
  EXPECT_FALSE(std::filesystem::exists(tmp / "back.npz"));
}

TEST_F(CliTest, AnalyzePrintsOneRowPerCodec) {
  TempDir tmp;
  const io::KvCache cache = kvcomp::testing::MakeCache(DType::kFP16, 2, 4, 64, 8, 5);
  ASSERT_TRUE(io::WriteKvCache(tmp / "in.npz", cache).ok());
  ProcessResult r = Kvcomp({"analyze", tmp / "in.npz", "--codec", "zstd(1)", "--codec", "zstd(19)",
                            "--server", server_->address()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("zstd(1) "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("zstd(19) "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("16384 of 16384 bytes"), std::string::npos) << r.out;  // 4 x 4 KiB
  EXPECT_NE(r.out.find("Recommended: zstd("), std::string::npos) << r.out;
  EXPECT_TRUE(ListDir(tmp.path()) == std::vector<std::string>{"in.npz"});  // writes nothing
  ProcessResult bad =
      Kvcomp({"analyze", tmp / "in.npz", "--codec", "bogus(", "--server", server_->address()});
  EXPECT_EQ(bad.exit_code, 3) << bad.err;
}

TEST_F(CliTest, UnwritableOutputFailsAndLeavesNoPartialFile) {
  TempDir tmp;
  const io::KvCache cache = kvcomp::testing::MakeCache(DType::kFP32, 4, 4, 128, 8, 12);
  ASSERT_TRUE(io::WriteKvCache(tmp / "in.npz", cache).ok());
  ASSERT_EQ(Compress(tmp / "in.npz", tmp / "c.kvc").exit_code, 0);

  // A parent that is a regular file: the directory cannot hold anything.
  kvcomp::testing::WriteAll(tmp / "plainfile", kvcomp::testing::Bytes("x"));
  for (const char* name : {"back.npz", "back.npy", "backdir"}) {
    ProcessResult r = Decompress(tmp / "c.kvc", tmp / (std::string("plainfile/") + name));
    EXPECT_EQ(r.exit_code, 2) << name << ": " << r.err;
  }

  // The disk "fills up" midway (RLIMIT_FSIZE below the output size): the write fails after
  // the temporary file was created, and nothing is left in the directory, for each format.
  const std::string out_dir = tmp / "out";
  std::filesystem::create_directory(out_dir);
  RunOptions limited;
  limited.file_size_limit = 8 * 1024;  // per file: each tensor is 16 KiB, the cache 128 KiB
  for (const char* name : {"back.npz", "backdir"}) {
    ProcessResult r = Decompress(tmp / "c.kvc", out_dir + "/" + name, limited);
    EXPECT_EQ(r.exit_code, 2) << name << ": " << r.err;
    EXPECT_NE(r.err.find("File too large"), std::string::npos) << r.err;
    EXPECT_TRUE(ListDir(out_dir).empty()) << name << " left " << ListDir(out_dir).size();
  }
  ProcessResult kvc = Kvcomp({"compress", tmp / "in.npz", "-o", out_dir + "/c.kvc", "--codec",
                              "zstd(3)", "--server", server_->address()},
                             RunOptions{8 * 1024});
  EXPECT_EQ(kvc.exit_code, 2) << kvc.err;
  EXPECT_TRUE(ListDir(out_dir).empty());

  // A directory without write permission (only meaningful when not root: root bypasses it).
  if (::geteuid() != 0) {
    std::filesystem::permissions(
        out_dir, std::filesystem::perms::owner_read | std::filesystem::perms::owner_exec);
    ProcessResult r = Decompress(tmp / "c.kvc", out_dir + "/back.npz");
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("PERMISSION_DENIED"), std::string::npos) << r.err;
    EXPECT_TRUE(ListDir(out_dir).empty());
    std::filesystem::permissions(out_dir, std::filesystem::perms::owner_all);
  }
  // And with room to write, the same command succeeds.
  ProcessResult ok = Decompress(tmp / "c.kvc", out_dir + "/ok.npz");
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(ListDir(out_dir), std::vector<std::string>{"ok.npz"});
}

// The CLI streams through the library above its threshold: 4 MiB tensors against 1 MiB
// message limits on both sides. The .kvc holds each tensor's token blocks, `kvcomp info`
// groups them, decompress gives the npz back byte-identical, and /metrics shows the streams.
TEST(CliStreamTest, TensorAboveTheMessageLimitRoundTripsThroughStreams) {
  auto server = ServerProcess::Start({"--max-message-bytes", std::to_string(1 << 20)});
  ASSERT_TRUE(server.ok()) << server.status();
  auto kvcomp = [&](std::vector<std::string> args) {
    args.insert(args.end(), {"--server", (*server)->address(), "--max-message-mib", "1"});
    return RunCli(args);
  };
  TempDir tmp;
  // Layer 0 K and V, FP16 [8, 2048, 128]: 4 MiB each, and layer 1 (tiny) sent whole.
  io::KvCache cache = kvcomp::testing::MakeCache(DType::kFP16, 1, 8, 2048, 128, 21);
  io::KvCache small = kvcomp::testing::MakeCache(DType::kFP16, 2, 2, 16, 8, 22);
  cache.push_back(small[2]);
  cache.push_back(small[3]);
  ASSERT_TRUE(io::WriteKvCache(tmp / "in.npz", cache).ok());

  ProcessResult c = kvcomp({"compress", tmp / "in.npz", "-o", tmp / "c.kvc", "--codec", "zstd(3)"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  EXPECT_NE(c.out.find("4 tensors in 12 frames"), std::string::npos) << c.out;
  ProcessResult info = kvcomp::testing::Run({KVCOMP_CLI_BINARY, "info", tmp / "c.kvc"});
  ASSERT_EQ(info.exit_code, 0) << info.err;
  EXPECT_NE(info.out.find("12 frames, 4 tensors"), std::string::npos) << info.out;
  for (const char* want : {"0-479/2048", "1916-2048/2048", "layer1_v", "whole"}) {
    EXPECT_NE(info.out.find(want), std::string::npos) << want << " missing from\n" << info.out;
  }
  ProcessResult d = kvcomp({"decompress", tmp / "c.kvc", "-o", tmp / "back.npz"});
  ASSERT_EQ(d.exit_code, 0) << d.err;
  auto back = io::ReadKvCache(tmp / "back.npz");
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->size(), cache.size());
  for (size_t i = 0; i < cache.size(); ++i) {
    EXPECT_EQ((*back)[i].name, cache[i].name);
    EXPECT_EQ((*back)[i].tensor.meta.shape, cache[i].tensor.meta.shape);
    EXPECT_TRUE((*back)[i].tensor.bytes == cache[i].tensor.bytes) << cache[i].name << " differs";
  }
  auto page = kvcomp::testing::HttpGet((*server)->metrics_address(), "/metrics");
  ASSERT_TRUE(page.ok()) << page.status();
  auto m = kvcomp::testing::PromMetrics::Parse(page->body);
  ASSERT_TRUE(m.ok()) << m.status();
  for (const char* method : {"CompressStream", "DecompressStream"}) {
    EXPECT_EQ(m->Sum("grpc_server_handled_total", {{"grpc_method", method}, {"grpc_code", "OK"}}),
              1)
        << method;
    EXPECT_EQ(m->Sum("grpc_server_msg_received_total", {{"grpc_method", method}}), 10) << method;
  }
  EXPECT_EQ(m->Sum("grpc_server_handled_total", {{"grpc_method", "Compress"}}), 0);

  // --stream-threshold-mib sets the block size: 512 KiB blocks of 255 tokens.
  ProcessResult finer = kvcomp({"compress", tmp / "in.npz", "-o", tmp / "f.kvc", "--codec",
                                "zstd(3)", "--stream-threshold-mib", "0.5"});
  ASSERT_EQ(finer.exit_code, 0) << finer.err;
  EXPECT_NE(finer.out.find("4 tensors in 20 frames"), std::string::npos) << finer.out;
  // A single tensor with no layer or kind cannot be found again in blocks in a .kvc file.
  io::KvCache lone(cache.begin(), cache.begin() + 1);
  lone[0].name = "cache";
  lone[0].tensor.meta.layer = -1;
  lone[0].tensor.meta.kind = Kind::kUnspecified;
  ASSERT_TRUE(io::WriteKvCache(tmp / "lone.npy", lone).ok());
  ProcessResult refused = kvcomp({"compress", tmp / "lone.npy", "-o", tmp / "lone.kvc"});
  EXPECT_EQ(refused.exit_code, 2) << refused.err;
  EXPECT_NE(refused.err.find("layer<N>_k"), std::string::npos) << refused.err;
  EXPECT_FALSE(std::filesystem::exists(tmp / "lone.kvc"));
  // With the server gone, decompress fails and leaves no output.
  ASSERT_TRUE((*server)->Stop().ok());
  ProcessResult gone =
      kvcomp({"decompress", tmp / "c.kvc", "-o", tmp / "gone.npz", "--attempts", "1"});
  EXPECT_EQ(gone.exit_code, 3) << gone.err;
  EXPECT_FALSE(std::filesystem::exists(tmp / "gone.npz"));
}

// Issue 25, finding 12: SIGINT or SIGTERM during `kvcomp decompress` left `.npz.tmp.*` files or
// `.dump.tmp.*` folders of tens of MB. The CLI now removes what it had not finished and exits
// 128 + the signal. Each signal is sent the moment a temporary output appears.
TEST_F(CliTest, InterruptedDecompressLeavesNoTemporaryOutput) {
  TempDir tmp;
  // 8 layers of K and V, [8, 1024, 128] FP16: 32 MiB to write, tens of milliseconds.
  const io::KvCache cache = kvcomp::testing::MakeCache(DType::kFP16, 8, 8, 1024, 128, 31);
  ASSERT_TRUE(io::WriteKvCache(tmp / "in.npz", cache).ok());
  ASSERT_EQ(Compress(tmp / "in.npz", tmp / "c.kvc").exit_code, 0);
  const std::string out_dir = tmp / "out";
  std::filesystem::create_directory(out_dir);
  for (const auto& [name, signal] : {std::pair<const char*, int>{"back.npz", SIGINT},
                                     std::pair<const char*, int>{"backdir", SIGTERM}}) {
    const std::string output = out_dir + "/" + name;
    const std::string cli = KVCOMP_CLI_BINARY, input = tmp / "c.kvc";
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      std::freopen("/dev/null", "w", stdout);
      ::execl(cli.c_str(), cli.c_str(), "decompress", input.c_str(), "-o", output.c_str(),
              "--server", server_->address().c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    bool seen = false;
    int status = 0;
    while (!seen && ::waitpid(pid, &status, WNOHANG) == 0) {
      for (const std::string& entry : ListDir(out_dir))
        seen = seen || absl::StrContains(entry, ".tmp.");
    }
    ASSERT_TRUE(seen) << name << ": the CLI finished before a temporary output was seen";
    ASSERT_EQ(::kill(pid, signal), 0);
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status)) << name << ": killed by signal " << WTERMSIG(status);
    EXPECT_EQ(WEXITSTATUS(status), 128 + signal) << name;
    EXPECT_TRUE(ListDir(out_dir).empty()) << name << " left " << ListDir(out_dir).front();
  }
}

// A .kvc whose token blocks of one tensor disagree (another head count) is malformed input:
// exit 2 before any call, not 3 as if the server had failed.
TEST_F(CliTest, MismatchedTokenBlocksInAKvcAreAnInputError) {
  TempDir tmp;
  const io::KvCache a = kvcomp::testing::MakeCache(DType::kFP16, 1, 2, 16, 8, 41);
  const io::KvCache b = kvcomp::testing::MakeCache(DType::kFP16, 1, 4, 16, 8, 42);
  ASSERT_TRUE(io::WriteKvCache(tmp / "a.npz", a).ok());
  ASSERT_TRUE(io::WriteKvCache(tmp / "b.npz", b).ok());
  ASSERT_EQ(Compress(tmp / "a.npz", tmp / "a.kvc").exit_code, 0);
  ASSERT_EQ(Compress(tmp / "b.npz", tmp / "b.kvc").exit_code, 0);
  std::vector<uint8_t> both = ReadAll(tmp / "a.kvc");
  const std::vector<uint8_t> more = ReadAll(tmp / "b.kvc");
  both.insert(both.end(), more.begin(), more.end());  // layer 0 K twice: as two token blocks
  kvcomp::testing::WriteAll(tmp / "both.kvc", both);
  ProcessResult r = Decompress(tmp / "both.kvc", tmp / "back.npz");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("disagrees"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(tmp / "back.npz"));
}

}  // namespace
}  // namespace kvcomp::cli

// llama.cpp sequence-state files through the kvcomp CLI and the real kvcomp-server on loopback:
// every file llama.cpp wrote (tests/data/llama_state) comes back byte-identical through a
// lossless spec, a lossy spec gives a state of the same shape, and bad input leaves nothing.
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "client/io/kv_io.h"
#include "client/io/llama_state.h"
#include "gtest/gtest.h"
#include "tests/client/test_util.h"
#include "tests/support/server_process.h"

namespace kvcomp::cli {
namespace {

using kvcomp::testing::ListDir;
using kvcomp::testing::ProcessResult;
using kvcomp::testing::ReadAll;
using kvcomp::testing::ServerProcess;
using kvcomp::testing::TempDir;

std::vector<std::string> StateFiles() {
  std::ifstream in(std::string(KVCOMP_LLAMA_STATE_DIR) + "/manifest.json");
  const nlohmann::json manifest = nlohmann::json::parse(in);
  std::vector<std::string> out;
  for (const auto& f : manifest["files"]) {
    out.push_back(absl::StrCat(KVCOMP_LLAMA_STATE_DIR, "/", f["file"].get<std::string>()));
  }
  return out;
}

std::string State(const std::string& name) {
  return absl::StrCat(KVCOMP_LLAMA_STATE_DIR, "/", name);
}

class LlamaStateCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = ServerProcess::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }
  ProcessResult Kvcomp(std::vector<std::string> args) {
    args.insert(args.begin(), KVCOMP_CLI_BINARY);
    return kvcomp::testing::Run(args);
  }
  ProcessResult Compress(const std::string& in, const std::string& out, const std::string& codec) {
    return Kvcomp({"compress", in, "-o", out, "--codec", codec, "--server", server_->address()});
  }
  ProcessResult Decompress(const std::string& in, const std::string& out) {
    return Kvcomp({"decompress", in, "-o", out, "--server", server_->address()});
  }
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(LlamaStateCliTest, EveryStateLlamaCppWroteRoundTripsByteIdenticalWhenLossless) {
  TempDir tmp;
  const std::vector<std::string> files = StateFiles();
  ASSERT_GE(files.size(), 13u);
  int i = 0;
  for (const std::string& in : files) {
    for (const char* codec : {"lossless", "lossless-max", "zstd(3)"}) {
      SCOPED_TRACE(absl::StrCat(in, " ", codec));
      const std::string kvc = tmp / absl::StrCat(i, ".kvc");
      const std::string out = tmp / absl::StrCat(i++, ".state");
      ProcessResult c = Compress(in, kvc, codec);
      ASSERT_EQ(c.exit_code, 0) << c.err;
      EXPECT_NE(c.out.find("llama.cpp sequence state"), std::string::npos) << c.out;
      EXPECT_NE(c.out.find("state skeleton"), std::string::npos) << c.out;
      EXPECT_NE(c.out.find("whole file: "), std::string::npos) << c.out;
      ProcessResult d = Decompress(kvc, out);
      ASSERT_EQ(d.exit_code, 0) << d.err;
      EXPECT_TRUE(ReadAll(out) == ReadAll(in));
    }
  }
}

TEST_F(LlamaStateCliTest, LossySpecsWriteAStateOfTheSameLayoutWithMeasuredError) {
  TempDir tmp;
  for (const char* name : {"f16-vtrans1.state", "bf16-vtrans1.state", "f32-vtrans0.state",
                           "f16k-bf16v-vtrans1.state"}) {
    SCOPED_TRACE(name);
    const std::string in = State(name);
    ProcessResult c = Compress(in, tmp / "l.kvc", "bounded(cos=0.999)");
    ASSERT_EQ(c.exit_code, 0) << c.err;
    // Each tensor's row carries its measured cosine (or "exact"), within the bound.
    int lossy_rows = 0;
    std::istringstream rows(c.out);
    for (std::string line; std::getline(rows, line);) {
      if (line.rfind("layer", 0) != 0) continue;
      std::istringstream fields(line);
      std::string name, layer, kind, dtype, shape, raw, comp, ratio, cosine;
      fields >> name >> layer >> kind >> dtype >> shape >> raw >> comp >> ratio >> cosine;
      if (cosine == "exact") continue;
      ++lossy_rows;
      EXPECT_GE(std::stod(cosine), 0.999) << line;
    }
    EXPECT_GT(lossy_rows, 0) << c.out;
    ProcessResult d = Kvcomp({"decompress", tmp / "l.kvc", "-o", tmp / "l.state", "--force",
                              "--server", server_->address()});
    ASSERT_EQ(d.exit_code, 0) << d.err;
    auto a = io::ReadLlamaStateFile(in);
    auto b = io::ReadLlamaStateFile(tmp / "l.state");
    ASSERT_TRUE(a.ok() && b.ok()) << b.status();
    EXPECT_EQ(a->skeleton, b->skeleton);  // tokens, cells, types and headers exactly
    ASSERT_EQ(a->tensors.size(), b->tensors.size());
    bool changed = false;
    for (size_t t = 0; t < a->tensors.size(); ++t) {
      EXPECT_EQ(a->tensors[t].tensor.meta.dtype, b->tensors[t].tensor.meta.dtype);
      EXPECT_EQ(a->tensors[t].tensor.meta.shape, b->tensors[t].tensor.meta.shape);
      changed |= a->tensors[t].tensor.bytes != b->tensors[t].tensor.bytes;
    }
    EXPECT_TRUE(changed) << "a lossy spec left every value as it was";
    std::remove((tmp / "l.kvc").c_str());
  }
}

TEST_F(LlamaStateCliTest, LossySpecsOnQuantisedCachesAreRefusedAndWriteNothing) {
  TempDir tmp;
  for (const char* name :
       {"q8_0-vtrans0.state", "q4_0-vtrans0.state", "q8_0k-f16v-vtrans1.state"}) {
    for (const char* codec : {"bounded(cos=0.99)", "quant(bits=8)+zstd(3)", "uquant(0.01)+qhuff",
                              "protected(sink=4,recent=8,bounded(cos=0.999))"}) {
      SCOPED_TRACE(absl::StrCat(name, " ", codec));
      ProcessResult c = Compress(State(name), tmp / "q.kvc", codec);
      EXPECT_EQ(c.exit_code, 3) << c.out;
      EXPECT_NE(c.err.find("INVALID_ARGUMENT"), std::string::npos) << c.err;
      EXPECT_TRUE(c.err.find("losslessly only") != std::string::npos ||
                  c.err.find("takes no q") != std::string::npos)
          << c.err;
      EXPECT_TRUE(ListDir(tmp.path()).empty());
    }
  }
}

TEST_F(LlamaStateCliTest, BadStatesAreInputErrorsNamingTheFieldAndWriteNothing) {
  TempDir tmp;
  std::vector<uint8_t> file = ReadAll(State("f16-vtrans1.state"));
  file.resize(500);
  kvcomp::testing::WriteAll(tmp / "cut.state", file);
  ProcessResult c = Compress(tmp / "cut.state", tmp / "cut.kvc", "lossless");
  EXPECT_EQ(c.exit_code, 2);
  EXPECT_NE(c.err.find("at byte offset"), std::string::npos) << c.err;
  file = ReadAll(State("f16-vtrans1.state"));
  file[4] = 9;
  kvcomp::testing::WriteAll(tmp / "v9.state", file);
  c = Compress(tmp / "v9.state", tmp / "v9.kvc", "lossless");
  EXPECT_EQ(c.exit_code, 2);
  EXPECT_NE(c.err.find("version at byte offset 4 is 9"), std::string::npos) << c.err;
  EXPECT_TRUE(ListDir(tmp.path()) == (std::vector<std::string>{"cut.state", "v9.state"}));
}

// A .kvc made from a state also decompresses to tensors (.npz), and `kvcomp info` shows its
// side record; a damaged side record is refused before the server is asked.
TEST_F(LlamaStateCliTest, StateKvcToNpzAndInfo) {
  TempDir tmp;
  ASSERT_EQ(Compress(State("f16-vtrans1.state"), tmp / "s.kvc", "lossless").exit_code, 0);
  ProcessResult info = Kvcomp({"info", tmp / "s.kvc"});
  ASSERT_EQ(info.exit_code, 0) << info.err;
  EXPECT_NE(info.out.find("side record at offset 0: llama.cpp sequence state"), std::string::npos)
      << info.out;
  EXPECT_NE(info.out.find("24 tokens, 24 cells, 5 layers, v_trans 1"), std::string::npos)
      << info.out;
  ProcessResult npz = Decompress(tmp / "s.kvc", tmp / "s.npz");
  ASSERT_EQ(npz.exit_code, 0) << npz.err;
  auto a = io::ReadLlamaStateFile(State("f16-vtrans1.state"));
  auto b = io::ReadKvCache(tmp / "s.npz");
  ASSERT_TRUE(a.ok() && b.ok()) << b.status();
  ASSERT_EQ(b->size(), 10u);
  for (size_t t = 0; t < 10; ++t) EXPECT_TRUE((*b)[t].tensor.bytes == a->tensors[t].tensor.bytes);
  // Q8_0 tensors have no .npz dtype: refused, nothing written.
  ASSERT_EQ(Compress(State("q8_0-vtrans0.state"), tmp / "q.kvc", "lossless").exit_code, 0);
  ProcessResult q = Decompress(tmp / "q.kvc", tmp / "q.npz");
  EXPECT_EQ(q.exit_code, 2);
  EXPECT_NE(q.err.find("Q8_0"), std::string::npos) << q.err;
  EXPECT_FALSE(std::filesystem::exists(tmp / "q.npz"));
  // Asked for a dump folder (an existing directory): refused, saying what it can write.
  std::filesystem::create_directory(tmp / "dir");
  ProcessResult dir = Kvcomp(
      {"decompress", tmp / "s.kvc", "-o", tmp / "dir", "--force", "--server", server_->address()});
  EXPECT_EQ(dir.exit_code, 2);
  EXPECT_NE(dir.err.find("written back as a state file"), std::string::npos) << dir.err;
  EXPECT_TRUE(std::filesystem::is_empty(tmp / "dir"));
  std::vector<uint8_t> kvc = ReadAll(tmp / "s.kvc");
  kvc[20] ^= 1;  // inside the side record
  kvcomp::testing::WriteAll(tmp / "bad.kvc", kvc);
  ProcessResult bad = Decompress(tmp / "bad.kvc", tmp / "bad.state");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("side record"), std::string::npos) << bad.err;
  EXPECT_FALSE(std::filesystem::exists(tmp / "bad.state"));
}

}  // namespace
}  // namespace kvcomp::cli

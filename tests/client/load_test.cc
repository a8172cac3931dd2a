// kvcomp load and kvcomp bench end to end: the real CLI against the real kvcomp-server, the
// load report checked against the server's own /metrics counters.
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/client/test_util.h"
#include "tests/support/http_get.h"
#include "tests/support/prom_text.h"
#include "tests/support/server_process.h"

namespace kvcomp::cli {
namespace {

using kvcomp::testing::HttpGet;
using kvcomp::testing::ProcessResult;
using kvcomp::testing::PromMetrics;
using kvcomp::testing::ServerProcess;
using kvcomp::testing::TempDir;

ProcessResult Kvcomp(std::vector<std::string> args) {
  args.insert(args.begin(), KVCOMP_CLI_BINARY);
  return kvcomp::testing::Run(args);
}

// grpc_server_handled_total for Compress: {code: count}.
std::map<std::string, double> Handled(const ServerProcess& server) {
  std::map<std::string, double> out;
  auto page = HttpGet(server.metrics_address(), "/metrics");
  EXPECT_TRUE(page.ok()) << page.status();
  if (!page.ok()) return out;
  auto m = PromMetrics::Parse(page->body);
  EXPECT_TRUE(m.ok()) << m.status();
  if (!m.ok()) return out;
  for (const auto& s : m->Find("grpc_server_handled_total", {{"grpc_method", "Compress"}})) {
    out[s.labels.at("grpc_code")] += s.value;
  }
  return out;
}

double Total(const std::map<std::string, double>& m, bool errors_only) {
  double t = 0;
  for (const auto& [code, n] : m) {
    if (!errors_only || code != "OK") t += n;
  }
  return t;
}

// Runs `kvcomp load --json` with `args` and checks its report against the server's counters.
nlohmann::json LoadAndCheck(const ServerProcess& server, std::vector<std::string> args) {
  const auto before = Handled(server);
  std::vector<std::string> all = {"load", "--server", server.address(), "--json"};
  all.insert(all.end(), args.begin(), args.end());
  ProcessResult r = Kvcomp(all);
  EXPECT_EQ(r.exit_code, 0) << r.err << r.out;
  nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << r.out;
  if (j.is_discarded()) return j;
  const auto after = Handled(server);
  const int64_t requests = j["requests"];
  const int64_t errors = j["errors"];
  EXPECT_EQ(Total(after, false) - Total(before, false), requests) << r.out;
  EXPECT_EQ(Total(after, true) - Total(before, true), errors) << r.out;
  int64_t by_code = 0;
  for (auto& [code, n] : j["status"].items()) by_code += n.get<int64_t>();
  EXPECT_EQ(by_code, requests);
  // Percentiles are ordered, and the histogram holds every request.
  const auto& l = j["latency_ms"];
  EXPECT_GT(l["p50"].get<double>(), 0);
  EXPECT_LE(l["p50"].get<double>(), l["p90"].get<double>());
  EXPECT_LE(l["p90"].get<double>(), l["p95"].get<double>());
  EXPECT_LE(l["p95"].get<double>(), l["p99"].get<double>());
  EXPECT_LE(l["p99"].get<double>(), l["p99.9"].get<double>());
  EXPECT_LE(l["p99.9"].get<double>(), l["max"].get<double>());
  int64_t in_hist = 0;
  for (const auto& b : j["histogram"]) in_hist += b["count"].get<int64_t>();
  EXPECT_EQ(in_hist, requests);
  return j;
}

class LoadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = ServerProcess::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(LoadTest, ClosedLoopWithBadRequestsMatchesServerCounters) {
  nlohmann::json j =
      LoadAndCheck(*server_, {"--duration", "3", "--requests", "100000", "--concurrency", "4",
                              "--connections", "2", "--bad-fraction", "0.2", "--codec", "zstd(1)",
                              "--data", "llama:layers=2,heads=4,dim=64,tokens=64"});
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j["mode"], "closed");
  EXPECT_GT(j["requests"].get<int64_t>(), 20);
  EXPECT_GT(j["errors"].get<int64_t>(), 0);  // --bad-fraction made some
  EXPECT_EQ(j["errors"], j["status"]["INVALID_ARGUMENT"]);
  EXPECT_GT(j["raw_gb_per_second"].get<double>(), 0);
  EXPECT_LT(j["duration_seconds"].get<double>(), 3 + 30);  // stopped by itself
}

TEST_F(LoadTest, OpenLoopHonoursTheRequestCountAndTheRate) {
  nlohmann::json j = LoadAndCheck(
      *server_, {"--rps", "40", "--requests", "60", "--duration", "20", "--concurrency", "8",
                 "--bad-fraction", "0.1", "--data", "llama:layers=1,heads=2,dim=64,tokens=32"});
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j["mode"], "open");
  EXPECT_EQ(j["requests"], 60);
  // 60 Poisson arrivals at 40/s take about 1.5 s; far from the 20 s bound.
  EXPECT_GT(j["duration_seconds"].get<double>(), 0.5);
  EXPECT_LT(j["duration_seconds"].get<double>(), 10);
}

// --shm: the same load with tensors named in a region and frames written into one; the counts
// still match the server's, closed and open loop, bad requests included.
TEST(LoadShmTest, TensorsByReferenceMatchServerCounters) {
  const std::string socket = ServerProcess::TempSocketPath("load-shm");
  auto server = ServerProcess::Start({"--shm-socket", socket});
  ASSERT_TRUE(server.ok()) << server.status();
  for (const char* rps : {"0", "50"}) {
    nlohmann::json j =
        LoadAndCheck(**server, {"--shm", socket, "--rps", rps, "--requests", "60", "--duration",
                                "20", "--concurrency", "4", "--bad-fraction", "0.1", "--codec",
                                "lossless", "--data", "llama:layers=2,heads=4,dim=64,tokens=64"});
    ASSERT_FALSE(j.is_discarded());
    EXPECT_TRUE(j["shm"].get<bool>());
    EXPECT_EQ(j["requests"], 60);
    EXPECT_GT(j["status"]["OK"].get<int64_t>(), 40);
    EXPECT_EQ(j["ok_raw_bytes"].get<int64_t>(), j["status"]["OK"].get<int64_t>() * 32768);
  }
  // A socket nobody serves: exit 3, saying so.
  ProcessResult r = Kvcomp(
      {"load", "--server", (*server)->address(), "--shm", socket + ".none", "--requests", "1"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("shared-memory socket"), std::string::npos) << r.err;
}

TEST_F(LoadTest, TextReportAndFailures) {
  ProcessResult r = Kvcomp({"load", "--server", server_->address(), "--requests", "20", "--data",
                            "llama:layers=1,heads=2,dim=64,tokens=32"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* want : {"requests   20 ", "p99.9", "histogram (ms)", "status codes", "OK"}) {
    EXPECT_NE(r.out.find(want), std::string::npos) << want << "\n" << r.out;
  }
  // Every call rejected: exit 3. A bad shape: exit 2. Nothing listening: exit 3.
  EXPECT_EQ(Kvcomp({"load", "--server", server_->address(), "--requests", "5", "--codec",
                    "zstdd(3)", "--data", "llama:layers=1,heads=2,dim=64,tokens=32"})
                .exit_code,
            3);
  EXPECT_EQ(Kvcomp({"load", "--server", server_->address(), "--data", "llama:dim=7"}).exit_code, 2);
  const std::string address = server_->address();
  ASSERT_TRUE(server_->Stop().ok());
  EXPECT_EQ(Kvcomp({"load", "--server", address, "--requests", "3", "--timeout", "2", "--data",
                    "llama:layers=1,heads=2,dim=64,tokens=32"})
                .exit_code,
            3);
}

TEST(BenchTest, ReportsRatioAndSpeedOnAGeneratedShapeAndAFile) {
  ProcessResult r = Kvcomp({"bench", "llama:layers=1,heads=4,dim=64,tokens=128", "--codec",
                            "lossless", "--runs", "3", "--threads", "2", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["raw_bytes"], 2 * 4 * 64 * 128 * 2);
  EXPECT_GT(j["ratio"].get<double>(), 1.0);
  EXPECT_TRUE(j["lossless"].get<bool>());
  EXPECT_GT(j["compress_gb_per_second"].get<double>(), 0);
  EXPECT_GT(j["decompress_gb_per_second"].get<double>(), 0);
  EXPECT_GT(j["compress_cpu_seconds_per_gb"].get<double>(), 0);
  EXPECT_EQ(j["compress_seconds"].size(), 3u);

  TempDir tmp;
  ASSERT_EQ(
      Kvcomp({"generate", "-o", tmp / "c.safetensors", "--layers", "1", "--tokens", "64", "-q"})
          .exit_code,
      0);
  r = Kvcomp({"bench", tmp / "c.safetensors", "--codec", "zstd(1)", "--runs", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("lossless, round trip checked"), std::string::npos) << r.out;
  EXPECT_EQ(Kvcomp({"bench", "llama", "--codec", "bogus("}).exit_code, 1);
  EXPECT_EQ(Kvcomp({"bench", tmp / "missing.npz"}).exit_code, 2);
}

// The CLI on safetensors: compress a file, decompress to safetensors, same tensors.
TEST_F(LoadTest, CompressDecompressSafetensorsRoundTrip) {
  TempDir tmp;
  for (const char* dtype : {"fp16", "fp32", "bf16"}) {
    const std::string in = tmp / (std::string(dtype) + ".safetensors");
    const std::string out = tmp / (std::string(dtype) + ".out.safetensors");
    ASSERT_EQ(
        Kvcomp({"generate", "-o", in, "--layers", "2", "--tokens", "32", "--dtype", dtype, "-q"})
            .exit_code,
        0);
    ProcessResult c = Kvcomp({"compress", in, "-o", tmp / "c.kvc", "-f", "--codec", "lossless",
                              "--server", server_->address()});
    ASSERT_EQ(c.exit_code, 0) << c.err;
    ProcessResult d =
        Kvcomp({"decompress", tmp / "c.kvc", "-o", out, "--server", server_->address()});
    ASSERT_EQ(d.exit_code, 0) << d.err;
    // Same writer, same tensors in the same order: byte-identical files.
    EXPECT_EQ(kvcomp::testing::ReadAll(in), kvcomp::testing::ReadAll(out)) << dtype;
  }
}

}  // namespace
}  // namespace kvcomp::cli

// /metrics, scraped over HTTP and parsed, counts exactly the calls made: per method and code,
// with the handling-time histogram and the codec byte counters; promtool accepts the page.
#include <stdlib.h>
#include <unistd.h>

#include <fstream>

#include <gtest/gtest.h>

#include "tests/server/server_fixture.h"
#include "tests/support/http_get.h"

namespace kvcomp::testing {
namespace {

constexpr char kService[] = "kvcomp.v1.KVCompressor";

PromLabels Handled(const std::string& method, const std::string& code) {
  return {{"grpc_service", kService},
          {"grpc_method", method},
          {"grpc_type", "unary"},
          {"grpc_code", code}};
}

PromLabels MethodLabels(const std::string& method) {
  return {{"grpc_service", kService}, {"grpc_method", method}, {"grpc_type", "unary"}};
}

class MetricsTest : public ServerTest {};

TEST_F(MetricsTest, CountsEveryCallByMethodAndCode) {
  v1::CompressRequest good;
  good.set_codec("zstd(3)");
  *good.add_tensors() = SyntheticTensor("layer0_k", 0, v1::TENSOR_KIND_K, 4, 64);
  *good.add_tensors() = SyntheticTensor("layer0_v", 0, v1::TENSOR_KIND_V, 4, 64);

  // 3 good Compress calls.
  uint64_t raw = 0, packed = 0;
  v1::CompressResponse compressed;
  for (int i = 0; i < 3; ++i) {
    grpc::ClientContext context;
    compressed.Clear();
    ASSERT_TRUE(stub_->Compress(&context, good, &compressed).ok());
    raw += compressed.totals().raw_bytes();
    packed += compressed.totals().compressed_bytes();
  }
  // 2 Compress calls that fail validation.
  for (const char* codec : {"nosuch(1)", "zstd(99)"}) {
    v1::CompressRequest bad = good;
    bad.set_codec(codec);
    v1::CompressResponse response;
    grpc::ClientContext context;
    ASSERT_EQ(stub_->Compress(&context, bad, &response).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }
  // 2 good Decompress calls and 1 with a corrupt frame.
  v1::DecompressRequest back;
  *back.add_tensors() = compressed.tensors(0);
  for (int i = 0; i < 2; ++i) {
    v1::DecompressResponse response;
    grpc::ClientContext context;
    ASSERT_TRUE(stub_->Decompress(&context, back, &response).ok());
  }
  v1::DecompressRequest corrupt = back;
  std::string* frame = corrupt.mutable_tensors(0)->mutable_frame();
  (*frame)[frame->size() / 2] ^= 0x5a;
  v1::DecompressResponse response;
  grpc::ClientContext corrupt_context;
  const grpc::StatusCode corrupt_code =
      stub_->Decompress(&corrupt_context, corrupt, &response).error_code();
  ASSERT_TRUE(corrupt_code == grpc::StatusCode::DATA_LOSS ||
              corrupt_code == grpc::StatusCode::INVALID_ARGUMENT)
      << corrupt_code;
  // 1 good Analyze call.
  v1::AnalyzeRequest analyze;
  analyze.add_codecs("zstd(3)");
  *analyze.add_tensors() = good.tensors(0);
  v1::AnalyzeResponse analysis;
  grpc::ClientContext analyze_context;
  ASSERT_TRUE(stub_->Analyze(&analyze_context, analyze, &analysis).ok());

  const PromMetrics m = Scrape();
  EXPECT_EQ(m.Value("grpc_server_handled_total", Handled("Compress", "OK")), 3);
  EXPECT_EQ(m.Value("grpc_server_handled_total", Handled("Compress", "InvalidArgument")), 2);
  EXPECT_EQ(m.Value("grpc_server_handled_total", Handled("Decompress", "OK")), 2);
  const char* corrupt_name =
      corrupt_code == grpc::StatusCode::DATA_LOSS ? "DataLoss" : "InvalidArgument";
  EXPECT_EQ(m.Value("grpc_server_handled_total", Handled("Decompress", corrupt_name)), 1);
  EXPECT_EQ(m.Value("grpc_server_handled_total", Handled("Analyze", "OK")), 1);
  // Nothing else was handled for this service.
  EXPECT_EQ(m.Sum("grpc_server_handled_total", {{"grpc_service", kService}}), 9);

  EXPECT_EQ(m.Value("grpc_server_started_total", MethodLabels("Compress")), 5);
  EXPECT_EQ(m.Value("grpc_server_started_total", MethodLabels("Decompress")), 3);
  EXPECT_EQ(m.Value("grpc_server_started_total", MethodLabels("Analyze")), 1);

  EXPECT_EQ(m.TypeOf("grpc_server_handling_seconds"), "histogram");
  EXPECT_EQ(m.Value("grpc_server_handling_seconds_count", MethodLabels("Compress")), 5);
  EXPECT_EQ(m.Value("grpc_server_handling_seconds_count", MethodLabels("Decompress")), 3);
  PromLabels inf = MethodLabels("Compress");
  inf["le"] = "+Inf";
  EXPECT_EQ(m.Value("grpc_server_handling_seconds_bucket", inf), 5);
  EXPECT_GT(m.Find("grpc_server_handling_seconds_bucket", MethodLabels("Compress")).size(), 5u);
  EXPECT_GT(*m.Value("grpc_server_handling_seconds_sum", MethodLabels("Compress")), 0);

  // Codec metrics: the 3 good Compress calls only, labelled by codec family.
  const PromLabels codec{{"codec", "zstd"}, {"dtype", "FP16"}};
  EXPECT_EQ(m.TypeOf("kvcomp_codec_bytes_in_total"), "counter");
  EXPECT_EQ(m.Value("kvcomp_codec_bytes_in_total", codec), static_cast<double>(raw));
  EXPECT_EQ(m.Value("kvcomp_codec_bytes_out_total", codec), static_cast<double>(packed));
  EXPECT_EQ(m.TypeOf("kvcomp_codec_ratio"), "histogram");
  EXPECT_EQ(m.Value("kvcomp_codec_ratio_count", codec), 6);  // 3 calls x 2 tensors
  EXPECT_TRUE(m.Find("kvcomp_codec_bytes_in_total", {{"codec", "nosuch"}}).empty());
}

TEST_F(MetricsTest, FreshServerHasHandledNothing) {
  const PromMetrics m = Scrape();
  EXPECT_EQ(m.Sum("grpc_server_handled_total", {{"grpc_service", kService}}), 0);
  EXPECT_EQ(m.Sum("kvcomp_codec_bytes_in_total"), 0);
  EXPECT_EQ(m.Sum("kvcomp_in_flight_calls"), 0);
  EXPECT_EQ(m.TypeOf("kvcomp_build_info"), "gauge");
  const std::vector<PromSample> build = m.Find("kvcomp_build_info", {{"version", KVCOMP_VERSION}});
  ASSERT_EQ(build.size(), 1u);
  EXPECT_EQ(build[0].value, 1);
}

TEST_F(MetricsTest, LossyCodecRecordsSecondsAndErrorHistograms) {
  v1::CompressRequest request;
  request.set_codec("quant(bits=4,group=tensor)+zstd(1)");
  *request.add_tensors() = SyntheticTensor("layer0_k", 0, v1::TENSOR_KIND_K, 4, 256);
  *request.add_tensors() = SyntheticTensor("layer0_v", 0, v1::TENSOR_KIND_V, 4, 256);
  v1::CompressResponse response;
  grpc::ClientContext context;
  ASSERT_TRUE(stub_->Compress(&context, request, &response).ok());
  ASSERT_FALSE(response.tensors(0).report().lossless());
  request.set_codec("zstd(3)");
  v1::CompressResponse lossless;
  grpc::ClientContext context2;
  ASSERT_TRUE(stub_->Compress(&context2, request, &lossless).ok());

  const PromMetrics m = Scrape();
  const PromLabels quant{{"codec", "quant"}, {"dtype", "FP16"}};
  const PromLabels zstd{{"codec", "zstd"}, {"dtype", "FP16"}};
  EXPECT_EQ(m.TypeOf("kvcomp_codec_seconds"), "histogram");
  EXPECT_EQ(m.Value("kvcomp_codec_seconds_count", quant), 2);
  EXPECT_EQ(m.Value("kvcomp_codec_seconds_count", zstd), 2);
  EXPECT_GT(*m.Value("kvcomp_codec_seconds_sum", quant), 0);
  EXPECT_EQ(m.TypeOf("kvcomp_codec_error_cosine"), "histogram");
  EXPECT_EQ(m.Value("kvcomp_codec_error_cosine_count", quant), 2);
  const double cosine_sum =
      response.tensors(0).report().error().cosine() + response.tensors(1).report().error().cosine();
  EXPECT_NEAR(*m.Value("kvcomp_codec_error_cosine_sum", quant), cosine_sum, 1e-6);
  EXPECT_EQ(m.Value("kvcomp_codec_error_rel_mae_count", quant), 2);
  // Lossless codecs have no error to record.
  EXPECT_EQ(m.Value("kvcomp_codec_error_cosine_count", zstd), 0);
}

// The page as Prometheus tooling reads it: promtool check metrics (lint) must pass.
TEST_F(MetricsTest, PromtoolAcceptsTheMetricsPage) {
  ExpectServesGoodRequest(*stub_);
  grpc::ClientContext context;
  auto stream = stub_->CompressStream(&context);
  stream->WritesDone();
  ASSERT_TRUE(stream->Finish().ok());
  absl::StatusOr<HttpResponse> page = HttpGet(server_->metrics_address(), "/metrics");
  ASSERT_TRUE(page.ok()) << page.status();
  char path[] = "/tmp/kvcomp-metrics-XXXXXX";
  const int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  std::ofstream(path) << page->body;
  std::string out;
  const int code = RunCommand(std::string("promtool check metrics < ") + path, &out);
  ::unlink(path);
  EXPECT_EQ(code, 0) << "promtool check metrics:\n" << out;
  EXPECT_NE(page->body.find("grpc_server_msg_received_total"), std::string::npos);
}

}  // namespace
}  // namespace kvcomp::testing

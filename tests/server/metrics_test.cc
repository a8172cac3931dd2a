// /metrics, scraped over HTTP and parsed, counts exactly the calls made: per method and code,
// with the handling-time histogram and the codec byte counters.
#include <gtest/gtest.h>

#include "tests/server/server_fixture.h"

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
}

}  // namespace
}  // namespace kvcomp::testing

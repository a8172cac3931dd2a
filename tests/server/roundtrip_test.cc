// Compress, Decompress and Analyze every ../shared/kv run through the real server with
// zstd(3): reports filled, totals summed, and the tensors back bit-exact.
#include <algorithm>
#include <filesystem>
#include <map>

#include <gtest/gtest.h>

#include "tests/server/server_fixture.h"
#include "tests/support/kv_dump.h"

namespace kvcomp::testing {
namespace {

class RoundTripTest : public ServerTest, public ::testing::WithParamInterface<const char*> {
 protected:
  // Every run under ../shared/kv, loaded as tensors of the parameter's datatype.
  std::map<std::string, std::vector<v1::Tensor>> LoadRuns() {
    std::map<std::string, std::vector<v1::Tensor>> runs;
    for (const std::string& dir : ListKvRuns(SharedKvDir())) {
      absl::StatusOr<std::vector<v1::Tensor>> tensors = LoadKvDump(dir, GetParam());
      EXPECT_TRUE(tensors.ok()) << tensors.status();
      if (tensors.ok()) runs[std::filesystem::path(dir).filename().string()] = *tensors;
    }
    return runs;
  }
};

void ExpectSameTensor(const v1::Tensor& got, const v1::Tensor& want) {
  EXPECT_EQ(got.name(), want.name());
  EXPECT_EQ(got.layer(), want.layer());
  EXPECT_EQ(got.kind(), want.kind());
  EXPECT_EQ(got.datatype(), want.datatype());
  EXPECT_EQ(std::vector<int64_t>(got.shape().begin(), got.shape().end()),
            std::vector<int64_t>(want.shape().begin(), want.shape().end()));
  EXPECT_EQ(got.layout(), want.layout());
  EXPECT_TRUE(got.raw_contents() == want.raw_contents()) << got.name() << " is not bit-exact";
}

void ExpectReportDescribes(const v1::TensorReport& report, const v1::Tensor& tensor) {
  EXPECT_EQ(report.name(), tensor.name());
  EXPECT_EQ(report.layer(), tensor.layer());
  EXPECT_EQ(report.kind(), tensor.kind());
  EXPECT_EQ(report.datatype(), tensor.datatype());
  EXPECT_EQ(report.shape_size(), tensor.shape_size());
  EXPECT_EQ(report.raw_bytes(), tensor.raw_contents().size());
  EXPECT_GT(report.compressed_bytes(), 0u);
  EXPECT_DOUBLE_EQ(report.ratio(), static_cast<double>(report.raw_bytes()) /
                                       static_cast<double>(report.compressed_bytes()));
  EXPECT_EQ(report.codec(), "zstd(3)");
  EXPECT_TRUE(report.lossless());
  EXPECT_FALSE(report.has_error());
}

// Compresses `tensors` with `codec`, sends back only names and frames, and checks every
// tensor returns bit-exact with its metadata. Returns the Compress response.
v1::CompressResponse ExpectRoundTrip(v1::KVCompressor::Stub& stub, const std::string& codec,
                                     const std::vector<v1::Tensor>& tensors) {
  v1::CompressRequest request;
  request.set_codec(codec);
  for (const v1::Tensor& t : tensors) *request.add_tensors() = t;
  v1::CompressResponse compressed;
  grpc::ClientContext c1;
  grpc::Status s = stub.Compress(&c1, request, &compressed);
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(compressed.tensors_size(), request.tensors_size());
  if (!s.ok() || compressed.tensors_size() != request.tensors_size()) return compressed;

  const v1::DecompressRequest back_request = NamesAndFrames(compressed);
  v1::DecompressResponse back;
  grpc::ClientContext c2;
  s = stub.Decompress(&c2, back_request, &back);
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(back.tensors_size(), request.tensors_size());
  for (int i = 0; i < std::min(back.tensors_size(), request.tensors_size()); ++i) {
    ExpectSameTensor(back.tensors(i), tensors[static_cast<size_t>(i)]);
  }
  return compressed;
}

TEST_P(RoundTripTest, CompressDecompressBitExactOnEveryRun) {
  const auto runs = LoadRuns();
  if (runs.empty()) GTEST_SKIP() << "no KV dumps under " << SharedKvDir();
  for (const auto& [run, tensors] : runs) {
    SCOPED_TRACE(run);
    const v1::CompressResponse compressed = ExpectRoundTrip(*stub_, "zstd(3)", tensors);
    ASSERT_EQ(compressed.tensors_size(), static_cast<int>(tensors.size()));

    uint64_t raw = 0, packed = 0;
    for (int i = 0; i < compressed.tensors_size(); ++i) {
      const v1::CompressedTensor& out = compressed.tensors(i);
      EXPECT_EQ(out.name(), tensors[i].name());
      ExpectReportDescribes(out.report(), tensors[i]);
      EXPECT_EQ(out.report().compressed_bytes(), out.frame().size());
      raw += out.report().raw_bytes();
      packed += out.report().compressed_bytes();
    }
    EXPECT_EQ(compressed.totals().raw_bytes(), raw);
    EXPECT_EQ(compressed.totals().compressed_bytes(), packed);
    EXPECT_DOUBLE_EQ(compressed.totals().ratio(),
                     static_cast<double>(raw) / static_cast<double>(packed));
    EXPECT_GT(compressed.totals().ratio(), 1.0);  // real KV data: zstd gains a little
  }
}

TEST_P(RoundTripTest, AnalyzeReportsEveryTensorForEveryCodec) {
  const auto runs = LoadRuns();
  if (runs.empty()) GTEST_SKIP() << "no KV dumps under " << SharedKvDir();
  for (const auto& [run, tensors] : runs) {
    SCOPED_TRACE(run);
    v1::CompressRequest compress_request;
    compress_request.set_codec("zstd(3)");
    v1::AnalyzeRequest request;
    request.add_codecs("zstd(3)");
    request.add_codecs("zstd(1)");
    for (const v1::Tensor& t : tensors) {
      *request.add_tensors() = t;
      *compress_request.add_tensors() = t;
    }
    v1::AnalyzeResponse analysis;
    grpc::ClientContext c1;
    grpc::Status s = stub_->Analyze(&c1, request, &analysis);
    ASSERT_TRUE(s.ok()) << s.error_message();
    ASSERT_EQ(analysis.codecs_size(), 2);
    EXPECT_EQ(analysis.codecs(0).codec(), "zstd(3)");
    EXPECT_EQ(analysis.codecs(1).codec(), "zstd(1)");

    // Analyze measures what Compress produces: zstd is deterministic.
    v1::CompressResponse compressed;
    grpc::ClientContext c2;
    s = stub_->Compress(&c2, compress_request, &compressed);
    ASSERT_TRUE(s.ok()) << s.error_message();

    const v1::CodecAnalysis& z3 = analysis.codecs(0);
    ASSERT_EQ(z3.reports_size(), static_cast<int>(tensors.size()));
    double compress_seconds = 0, decompress_seconds = 0;
    for (int i = 0; i < z3.reports_size(); ++i) {
      ExpectReportDescribes(z3.reports(i), tensors[i]);
      EXPECT_EQ(z3.reports(i).compressed_bytes(),
                compressed.tensors(i).report().compressed_bytes());
      EXPECT_GE(z3.reports(i).compress_seconds(), 0);
      EXPECT_GE(z3.reports(i).decompress_seconds(), 0);
      compress_seconds += z3.reports(i).compress_seconds();
      decompress_seconds += z3.reports(i).decompress_seconds();
    }
    EXPECT_GT(compress_seconds, 0);
    EXPECT_GT(decompress_seconds, 0);
    EXPECT_EQ(z3.totals().raw_bytes(), compressed.totals().raw_bytes());
    EXPECT_EQ(z3.totals().compressed_bytes(), compressed.totals().compressed_bytes());

    const v1::CodecAnalysis& z1 = analysis.codecs(1);
    ASSERT_EQ(z1.reports_size(), static_cast<int>(tensors.size()));
    for (const v1::TensorReport& r : z1.reports()) {
      EXPECT_EQ(r.codec(), "zstd(1)");
      EXPECT_TRUE(r.lossless());
    }
    EXPECT_EQ(z1.totals().raw_bytes(), z3.totals().raw_bytes());
  }
}

TEST_P(RoundTripTest, AnalyzeSweepRecommendsASpecThatCompressAccepts) {
  const auto runs = LoadRuns();
  if (runs.empty()) GTEST_SKIP() << "no KV dumps under " << SharedKvDir();
  const std::vector<v1::Tensor>& tensors = runs.begin()->second;
  v1::AnalyzeRequest request;
  request.add_sweeps("lossless");
  for (const v1::Tensor& t : tensors) *request.add_tensors() = t;
  v1::AnalyzeResponse analysis;
  grpc::ClientContext c1;
  grpc::Status s = stub_->Analyze(&c1, request, &analysis);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_GT(analysis.codecs_size(), 1);
  for (const v1::CodecAnalysis& c : analysis.codecs()) {
    SCOPED_TRACE(c.codec());
    EXPECT_TRUE(c.error().empty()) << c.error();
    EXPECT_TRUE(c.lossless());
    EXPECT_EQ(c.reports_size(), static_cast<int>(tensors.size()));
    ASSERT_GT(c.reports_size(), 0);
    EXPECT_EQ(c.reports(0).name(), tensors[0].name());
  }
  EXPECT_EQ(analysis.full_raw_bytes(), analysis.analysed_raw_bytes());
  ASSERT_TRUE(analysis.recommendation().found()) << analysis.recommendation().why();

  // The recommended spec goes to Compress unchanged and round-trips bit-exact.
  const v1::CompressResponse compressed =
      ExpectRoundTrip(*stub_, analysis.recommendation().codec(), tensors);
  EXPECT_NEAR(compressed.totals().ratio(), analysis.recommendation().ratio(), 1e-9);
}

TEST_F(ServerTest, AnalyzeUnknownSweepIsInvalidArgument) {
  v1::AnalyzeRequest request;
  request.add_sweeps("nosuchsweep");
  *request.add_tensors() = SyntheticTensor("layer0_k", 0, v1::TENSOR_KIND_K, 2, 16);
  v1::AnalyzeResponse response;
  grpc::ClientContext context;
  const grpc::Status s = stub_->Analyze(&context, request, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("nosuchsweep"), std::string::npos) << s.error_message();
  ExpectServesGoodRequest(*stub_);
}

INSTANTIATE_TEST_SUITE_P(Dumps, RoundTripTest, ::testing::Values("FP16", "FP32"),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           return std::string(info.param);
                         });

}  // namespace
}  // namespace kvcomp::testing

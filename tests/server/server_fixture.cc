#include "tests/server/server_fixture.h"

#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <cstring>

#include "tests/support/http_get.h"

namespace kvcomp::testing {

std::shared_ptr<grpc::Channel> UnlimitedChannel(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

void ServerTest::StartServer(const std::vector<std::string>& extra_args) {
  absl::StatusOr<std::unique_ptr<ServerProcess>> server = ServerProcess::Start(extra_args);
  ASSERT_TRUE(server.ok()) << server.status();
  server_ = *std::move(server);
  stub_ = v1::KVCompressor::NewStub(UnlimitedChannel(server_->address()));
}

PromMetrics ServerTest::Scrape() {
  absl::StatusOr<HttpResponse> response = HttpGet(server_->metrics_address(), "/metrics");
  EXPECT_TRUE(response.ok()) << response.status();
  if (!response.ok()) return {};
  EXPECT_EQ(response->status, 200) << response->headers;
  absl::StatusOr<PromMetrics> metrics = PromMetrics::Parse(response->body);
  EXPECT_TRUE(metrics.ok()) << metrics.status();
  return metrics.ok() ? *std::move(metrics) : PromMetrics{};
}

v1::DecompressRequest NamesAndFrames(const v1::CompressResponse& compressed) {
  v1::DecompressRequest request;
  for (const v1::CompressedTensor& out : compressed.tensors()) {
    v1::CompressedTensor* in = request.add_tensors();
    in->set_name(out.name());
    in->set_frame(out.frame());
  }
  return request;
}

v1::Tensor SyntheticTensor(const std::string& name, int layer, v1::TensorKind kind, int heads,
                           int tokens) {
  constexpr int kDim = 8;
  v1::Tensor t;
  t.set_name(name);
  t.set_layer(layer);
  t.set_kind(kind);
  t.set_datatype("FP16");
  t.add_shape(heads);
  t.add_shape(tokens);
  t.add_shape(kDim);
  t.set_layout(v1::TENSOR_LAYOUT_HEAD_MAJOR);
  std::string bytes;
  bytes.reserve(static_cast<size_t>(heads) * tokens * kDim * 2);
  for (int h = 0; h < heads; ++h) {
    for (int tok = 0; tok < tokens; ++tok) {
      for (int d = 0; d < kDim; ++d) {
        // Values in [-2, 2], rounded to 1/64 so they are exact in FP16 (sign, exponent and
        // mantissa built by hand: 1/64 steps need at most 7 mantissa bits).
        const double v = 2.0 * std::sin(0.05 * tok * (d + 1) + h);
        const int steps = static_cast<int>(std::lround(v * 64));  // |steps| <= 128
        uint16_t bits = 0;
        if (steps != 0) {
          const int mag = std::abs(steps);
          int exp = 0;
          while ((mag >> exp) > 1) ++exp;  // 2^exp <= mag < 2^(exp+1)
          const uint16_t mantissa = static_cast<uint16_t>(((mag << 10) >> exp) & 0x3ff);
          const int biased = exp - 6 + 15;  // value = mag / 64 = 2^(exp-6) * (1 + m)
          bits = static_cast<uint16_t>((steps < 0 ? 0x8000 : 0) | (biased << 10) | mantissa);
        }
        bytes.push_back(static_cast<char>(bits & 0xff));
        bytes.push_back(static_cast<char>(bits >> 8));
      }
    }
  }
  t.set_raw_contents(std::move(bytes));
  return t;
}

int RunCommand(const std::string& command, std::string* output) {
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return -1;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) output->append(buf, n);
  const int status = ::pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

double ScrapeSum(const ServerProcess& server, const std::string& name) {
  absl::StatusOr<HttpResponse> scrape = HttpGet(server.metrics_address(), "/metrics");
  if (!scrape.ok()) return -1;
  absl::StatusOr<PromMetrics> metrics = PromMetrics::Parse(scrape->body);
  return metrics.ok() ? metrics->Sum(name) : -1;
}

void ExpectServesGoodRequest(v1::KVCompressor::Stub& stub) {
  v1::CompressRequest request;
  request.set_codec("zstd(3)");
  *request.add_tensors() = SyntheticTensor("probe", 0, v1::TENSOR_KIND_V, 2, 32);
  v1::CompressResponse compressed;
  grpc::ClientContext c1;
  grpc::Status s = stub.Compress(&c1, request, &compressed);
  ASSERT_TRUE(s.ok()) << s.error_code() << ": " << s.error_message();
  ASSERT_EQ(compressed.tensors_size(), 1);

  v1::DecompressRequest back_request;
  *back_request.add_tensors() = compressed.tensors(0);
  v1::DecompressResponse back;
  grpc::ClientContext c2;
  s = stub.Decompress(&c2, back_request, &back);
  ASSERT_TRUE(s.ok()) << s.error_code() << ": " << s.error_message();
  ASSERT_EQ(back.tensors_size(), 1);
  EXPECT_EQ(back.tensors(0).raw_contents(), request.tensors(0).raw_contents());
}

}  // namespace kvcomp::testing

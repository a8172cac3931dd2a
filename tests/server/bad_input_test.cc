// Bad input gets the right status with a message that says what was wrong, and the server
// keeps serving afterwards.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/server/server_fixture.h"

namespace kvcomp::testing {
namespace {

using ::testing::HasSubstr;

class BadInputTest : public ServerTest {
 protected:
  grpc::Status Compress(const v1::CompressRequest& request) {
    v1::CompressResponse response;
    grpc::ClientContext context;
    return stub_->Compress(&context, request, &response);
  }
  grpc::Status Decompress(const std::string& frame) {
    v1::DecompressRequest request;
    v1::CompressedTensor* t = request.add_tensors();
    t->set_name("t");
    t->set_frame(frame);
    v1::DecompressResponse response;
    grpc::ClientContext context;
    grpc::Status s = stub_->Decompress(&context, request, &response);
    if (s.ok()) {
      ADD_FAILURE() << "a damaged frame decoded as tensor " << response.tensors(0).datatype()
                    << " of " << response.tensors(0).raw_contents().size() << " bytes";
    }
    return s;
  }
  // One small FP16 tensor to compress with `codec`.
  static v1::CompressRequest SmallRequest(const std::string& codec) {
    v1::CompressRequest request;
    request.set_codec(codec);
    *request.add_tensors() = SyntheticTensor("x", 0, v1::TENSOR_KIND_K, 1, 8);
    return request;
  }
  // A small valid frame.
  std::string SmallFrame() {
    const v1::CompressRequest request = SmallRequest("zstd(3)");
    v1::CompressResponse response;
    grpc::ClientContext context;
    grpc::Status s = stub_->Compress(&context, request, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return s.ok() ? response.tensors(0).frame() : std::string();
  }
};

bool IsDataLossOrInvalid(grpc::StatusCode code) {
  return code == grpc::StatusCode::DATA_LOSS || code == grpc::StatusCode::INVALID_ARGUMENT;
}

TEST_F(BadInputTest, WrongByteCountNamesExpectedAndReceivedSizes) {
  v1::CompressRequest request;
  request.set_codec("zstd(3)");
  v1::Tensor* t = request.add_tensors();
  *t = SyntheticTensor("layer2_v", 2, v1::TENSOR_KIND_V, 4, 16);  // 4*16*8*2 = 1024 bytes
  t->mutable_raw_contents()->resize(1000);
  const grpc::Status s = Compress(request);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("1024"));
  EXPECT_THAT(s.error_message(), HasSubstr("1000"));
  EXPECT_THAT(s.error_message(), HasSubstr("layer2_v"));
  ExpectServesGoodRequest(*stub_);
}

TEST_F(BadInputTest, UnknownDatatypeIsNamed) {
  v1::CompressRequest request = SmallRequest("zstd(3)");
  request.mutable_tensors(0)->set_datatype("FP8");
  const grpc::Status s = Compress(request);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("FP8"));
  ExpectServesGoodRequest(*stub_);
}

TEST_F(BadInputTest, UnknownCodecIsNamed) {
  v1::CompressRequest request = SmallRequest("nosuch(1)");
  const grpc::Status s = Compress(request);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("nosuch"));

  v1::AnalyzeRequest analyze;
  analyze.add_codecs("zstd(3)");
  analyze.add_codecs("nosuch(1)");
  *analyze.add_tensors() = request.tensors(0);
  v1::AnalyzeResponse response;
  grpc::ClientContext context;
  const grpc::Status a = stub_->Analyze(&context, analyze, &response);
  EXPECT_EQ(a.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(a.error_message(), HasSubstr("nosuch"));
  ExpectServesGoodRequest(*stub_);
}

TEST_F(BadInputTest, BadCodecParameterIsInvalidArgument) {
  v1::CompressRequest request = SmallRequest("zstd(99)");
  const grpc::Status s = Compress(request);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("99"));
  ExpectServesGoodRequest(*stub_);
}

TEST_F(BadInputTest, EveryFlippedByteIsRejected) {
  const std::string frame = SmallFrame();
  ASSERT_FALSE(frame.empty());
  for (size_t i = 0; i < frame.size(); ++i) {
    for (unsigned char mask : {0x01, 0xff}) {
      std::string damaged = frame;
      damaged[i] = static_cast<char>(damaged[i] ^ mask);
      const grpc::Status s = Decompress(damaged);
      EXPECT_TRUE(IsDataLossOrInvalid(s.error_code()))
          << "byte " << i << " ^ " << int{mask} << ": " << s.error_code() << " "
          << s.error_message();
    }
  }
  ExpectServesGoodRequest(*stub_);
}

TEST_F(BadInputTest, EveryTruncationIsRejected) {
  const std::string frame = SmallFrame();
  ASSERT_FALSE(frame.empty());
  for (size_t n = 0; n < frame.size(); ++n) {
    const grpc::Status s = Decompress(frame.substr(0, n));
    EXPECT_TRUE(IsDataLossOrInvalid(s.error_code()))
        << "first " << n << " of " << frame.size() << " bytes: " << s.error_code() << " "
        << s.error_message();
  }
  ExpectServesGoodRequest(*stub_);
}

class SmallLimitTest : public BadInputTest {
 protected:
  static constexpr int kLimit = 64 * 1024;
  void SetUp() override { StartServer({"--max-message-bytes", std::to_string(kLimit)}); }
};

TEST_F(SmallLimitTest, RequestOverTheLimitIsResourceExhausted) {
  v1::CompressRequest request;
  request.set_codec("zstd(3)");
  *request.add_tensors() = SyntheticTensor("big", 0, v1::TENSOR_KIND_V, 8, 512);  // 64 KiB
  ASSERT_GT(request.ByteSizeLong(), static_cast<size_t>(kLimit));
  EXPECT_EQ(Compress(request).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  ExpectServesGoodRequest(*stub_);
}

TEST_F(SmallLimitTest, FrameDecodingOverTheLimitIsResourceExhausted) {
  // A frame small enough to send whose tensor is too big to send back: all-zero bytes
  // compress to almost nothing. It is made by a second server without the small limit.
  auto big_server = ServerProcess::Start();
  ASSERT_TRUE(big_server.ok()) << big_server.status();
  auto big_stub = v1::KVCompressor::NewStub(UnlimitedChannel((*big_server)->address()));
  v1::CompressRequest request;
  request.set_codec("zstd(3)");
  v1::Tensor* t = request.add_tensors();
  *t = SyntheticTensor("zeros", 0, v1::TENSOR_KIND_V, 8, 1024);  // 128 KiB
  t->set_raw_contents(std::string(t->raw_contents().size(), '\0'));
  v1::CompressResponse compressed;
  grpc::ClientContext context;
  ASSERT_TRUE(big_stub->Compress(&context, request, &compressed).ok());
  ASSERT_LT(compressed.tensors(0).frame().size(), static_cast<size_t>(kLimit) / 4);

  v1::DecompressRequest back;
  *back.add_tensors() = compressed.tensors(0);
  v1::DecompressResponse response;
  grpc::ClientContext back_context;
  const grpc::Status s = stub_->Decompress(&back_context, back, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr(std::to_string(kLimit)));
  ExpectServesGoodRequest(*stub_);
}

}  // namespace
}  // namespace kvcomp::testing

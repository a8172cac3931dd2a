// One call on every worker (issue 27, item 4): the tensors of a Compress and the token blocks of
// a big tensor are spread over the server's workers, and the frames are the same bytes whatever
// their number. Real servers with 1 and 3 workers, the same requests.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/kvcomp/frame.h"
#include "tests/server/server_fixture.h"

namespace kvcomp::testing {
namespace {

v1::CompressRequest CacheRequest(const std::string& codec, uint64_t block_tokens) {
  v1::CompressRequest request;
  request.set_codec(codec);
  request.set_block_tokens(block_tokens);
  for (int layer = 0; layer < 4; ++layer) {
    const int tokens = 700 + 300 * layer;
    *request.add_tensors() = SyntheticTensor("layer" + std::to_string(layer) + "_k", layer,
                                             v1::TENSOR_KIND_K, 4, tokens);
    *request.add_tensors() = SyntheticTensor("layer" + std::to_string(layer) + "_v", layer,
                                             v1::TENSOR_KIND_V, 4, tokens);
  }
  return request;
}

v1::CompressResponse Compress(v1::KVCompressor::Stub& stub, const v1::CompressRequest& request) {
  v1::CompressResponse response;
  grpc::ClientContext context;
  const grpc::Status s = stub.Compress(&context, request, &response);
  EXPECT_TRUE(s.ok()) << s.error_code() << ": " << s.error_message();
  return response;
}

TEST(ParallelCallTest, FramesAreTheSameBytesWhateverTheWorkers) {
  auto one = ServerProcess::Start({"--workers", "1"});
  auto three = ServerProcess::Start({"--workers", "3"});
  ASSERT_TRUE(one.ok()) << one.status();
  ASSERT_TRUE(three.ok()) << three.status();
  auto stub1 = v1::KVCompressor::NewStub(UnlimitedChannel((*one)->address()));
  auto stub3 = v1::KVCompressor::NewStub(UnlimitedChannel((*three)->address()));
  for (const char* codec : {"lossless", "bounded(cos=0.9999)"}) {
    for (uint64_t block_tokens : {uint64_t{0}, uint64_t{256}}) {
      SCOPED_TRACE(std::string(codec) + ", block_tokens " + std::to_string(block_tokens));
      const v1::CompressRequest request = CacheRequest(codec, block_tokens);
      const v1::CompressResponse a = Compress(*stub1, request);
      const v1::CompressResponse b = Compress(*stub3, request);
      ASSERT_EQ(a.tensors_size(), request.tensors_size());
      ASSERT_EQ(b.tensors_size(), request.tensors_size());
      for (int i = 0; i < request.tensors_size(); ++i) {
        EXPECT_TRUE(a.tensors(i).frame() == b.tensors(i).frame()) << "tensor " << i;
        EXPECT_EQ(a.tensors(i).report().compressed_bytes(), a.tensors(i).frame().size());
        const auto frames = SplitFrames(
            absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(a.tensors(i).frame().data()),
                                a.tensors(i).frame().size()));
        ASSERT_TRUE(frames.ok()) << frames.status();
        const size_t tokens = static_cast<size_t>(request.tensors(i).shape(1));
        EXPECT_EQ(frames->size(),
                  block_tokens == 0 ? 1 : (tokens + block_tokens - 1) / block_tokens);
      }
      EXPECT_EQ(a.totals().compressed_bytes(), b.totals().compressed_bytes());
    }
  }
}

// A tensor in token blocks comes back whole from a Decompress of its entry, bit-exact, on a
// server with several workers.
TEST(ParallelCallTest, ATensorInBlocksDecompressesWhole) {
  auto server = ServerProcess::Start({"--workers", "3"});
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = v1::KVCompressor::NewStub(UnlimitedChannel((*server)->address()));
  const v1::CompressRequest request = CacheRequest("lossless", 200);
  const v1::CompressResponse compressed = Compress(*stub, request);
  ASSERT_EQ(compressed.tensors_size(), request.tensors_size());
  const v1::DecompressRequest back_request = NamesAndFrames(compressed);
  v1::DecompressResponse back;
  grpc::ClientContext context;
  const grpc::Status s = stub->Decompress(&context, back_request, &back);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(back.tensors_size(), request.tensors_size());
  for (int i = 0; i < request.tensors_size(); ++i) {
    EXPECT_EQ(back.tensors(i).name(), request.tensors(i).name());
    EXPECT_THAT(back.tensors(i).shape(), ::testing::ElementsAreArray(request.tensors(i).shape()));
    EXPECT_TRUE(back.tensors(i).raw_contents() == request.tensors(i).raw_contents()) << i;
  }
}

TEST(ParallelCallTest, BlocksTooSmallForTheCallAreRefused) {
  auto server = ServerProcess::Start({});
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = v1::KVCompressor::NewStub(UnlimitedChannel((*server)->address()));
  v1::CompressRequest request;
  request.set_codec("zstd(1)");
  request.set_block_tokens(1);
  *request.add_tensors() = SyntheticTensor("k", 0, v1::TENSOR_KIND_K, 1, 70000);
  v1::CompressResponse response;
  grpc::ClientContext context;
  const grpc::Status s = stub->Compress(&context, request, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), ::testing::HasSubstr("70000 blocks"));
  ExpectServesGoodRequest(*stub);
}

}  // namespace
}  // namespace kvcomp::testing

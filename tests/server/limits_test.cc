// Limits as flags: tensor elements, decompressed size (checked before allocating), concurrent
// calls; and deadlines and cancellation noticed inside long codec work.
#include <chrono>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/server/server_fixture.h"

namespace kvcomp::testing {
namespace {

using ::testing::HasSubstr;

TEST(LimitsTest, TensorOverMaxElementsIsResourceExhausted) {
  auto server = ServerProcess::Start({"--max-tensor-elements", "1000"});
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = v1::KVCompressor::NewStub(UnlimitedChannel((*server)->address()));
  v1::CompressRequest request;
  request.set_codec("zstd(3)");
  *request.add_tensors() = SyntheticTensor("small", 0, v1::TENSOR_KIND_K, 2, 32);  // 512
  *request.add_tensors() = SyntheticTensor("big", 0, v1::TENSOR_KIND_V, 4, 64);    // 2048
  v1::CompressResponse response;
  grpc::ClientContext context;
  grpc::Status s = stub->Compress(&context, request, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(s.error_message(), HasSubstr("'big'"));
  EXPECT_THAT(s.error_message(), HasSubstr("--max-tensor-elements"));
  ExpectServesGoodRequest(*stub);  // 512 elements pass
}

// A zstd frame of an 8-head tensor of `tokens` tokens x 32 channels of FP16.
v1::CompressedTensor ZstdFrame(v1::KVCompressor::Stub& stub, int tokens) {
  v1::CompressRequest request;
  request.set_codec("zstd(3)");
  *request.add_tensors() = SyntheticTensor("k", 0, v1::TENSOR_KIND_K, 8, tokens);
  v1::CompressResponse compressed;
  grpc::ClientContext context;
  EXPECT_TRUE(stub.Compress(&context, request, &compressed).ok());
  return compressed.tensors_size() == 1 ? compressed.tensors(0) : v1::CompressedTensor();
}

grpc::Status DecompressFrames(v1::KVCompressor::Stub& stub, const v1::CompressedTensor& frame,
                              int copies) {
  v1::DecompressRequest request;
  for (int i = 0; i < copies; ++i) *request.add_tensors() = frame;
  v1::DecompressResponse response;
  grpc::ClientContext context;
  return stub.Decompress(&context, request, &response);
}

// The limit counts each tensor's reply entry, metadata too (issue 25, finding 2): 270000 bytes
// hold two 128 KiB tensors and their few dozen bytes of metadata.
TEST(LimitsTest, FrameOverMaxDecompressedBytesIsRefusedBeforeDecoding) {
  auto server = ServerProcess::Start({"--max-decompressed-bytes", "270000"});
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = v1::KVCompressor::NewStub(UnlimitedChannel((*server)->address()));
  const v1::CompressedTensor big = ZstdFrame(*stub, 4096);  // 512 KiB
  ASSERT_LT(big.frame().size(), 262144u);                   // small on the wire...
  grpc::Status s = DecompressFrames(*stub, big, 1);         // ...a bomb once decoded
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(s.error_message(), HasSubstr("over the limit of 270000"));

  // The limit is the call's, not each frame's: frames of 128 KiB each pass a per-frame check
  // of 256 KiB, but four together would decode to twice the limit.
  const v1::CompressedTensor small = ZstdFrame(*stub, 1024);
  EXPECT_TRUE(DecompressFrames(*stub, small, 2).ok());  // 256 KiB and metadata: under it
  s = DecompressFrames(*stub, small, 4);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(s.error_message(), HasSubstr("tensor 2"));
  EXPECT_THAT(s.error_message(), HasSubstr("the request's earlier tensors decode to 2621"));
  EXPECT_THAT(s.error_message(), HasSubstr("of its 270000 bytes"));
  ExpectServesGoodRequest(*stub);
}

// An Analyze of the default sweep over 8 tensors of 8 x 2048 tokens: over a minute of work
// on one worker, checked for cancellation between tensors and configurations.
v1::AnalyzeRequest LongAnalyze() {
  v1::AnalyzeRequest request;
  request.add_sweeps("default");
  for (int layer = 0; layer < 4; ++layer) {
    *request.add_tensors() = SyntheticTensor("k", layer, v1::TENSOR_KIND_K, 8, 2048);
    *request.add_tensors() = SyntheticTensor("v", layer, v1::TENSOR_KIND_V, 8, 2048);
  }
  return request;
}

bool WaitForInFlight(const ServerProcess& server, double calls) {
  for (int i = 0; i < 2000; ++i) {
    if (ScrapeSum(server, "kvcomp_in_flight_calls") == calls) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

TEST(LimitsTest, CallsBeyondMaxConcurrentAreResourceExhaustedAndCancelFreesTheSlot) {
  auto server = ServerProcess::Start({"--max-concurrent-calls", "1", "--workers", "1"});
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = v1::KVCompressor::NewStub(UnlimitedChannel((*server)->address()));
  const v1::AnalyzeRequest request = LongAnalyze();
  grpc::ClientContext long_context;
  grpc::Status long_status;
  std::thread call([&] {
    v1::AnalyzeResponse response;
    long_status = stub->Analyze(&long_context, request, &response);
  });
  ASSERT_TRUE(WaitForInFlight(**server, 1)) << "the Analyze call never showed up in flight";
  // In flight counts from the call's start; the slot is taken once its request has arrived.
  for (int i = 0; i < 2000 && ScrapeSum(**server, "grpc_server_msg_received_total") < 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));

  v1::CompressRequest small;
  small.set_codec("zstd(3)");
  *small.add_tensors() = SyntheticTensor("probe", 0, v1::TENSOR_KIND_V, 2, 32);
  v1::CompressResponse response;
  grpc::ClientContext c1;
  grpc::Status s = stub->Compress(&c1, small, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(s.error_message(), HasSubstr("--max-concurrent-calls"));
  grpc::ClientContext c2;
  auto stream = stub->CompressStream(&c2);  // streams count too
  stream->WritesDone();
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);

  // Cancelling the long call stops it at its next tensor; the slot and the one worker free up.
  const auto cancelled_at = std::chrono::steady_clock::now();
  long_context.TryCancel();
  call.join();
  EXPECT_EQ(long_status.error_code(), grpc::StatusCode::CANCELLED);
  ASSERT_TRUE(WaitForInFlight(**server, 0));
  ExpectServesGoodRequest(*stub);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - cancelled_at).count(),
            20);
}

TEST(LimitsTest, DeadlineStopsLongCodecWork) {
  auto server = ServerProcess::Start({"--workers", "1"});
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = v1::KVCompressor::NewStub(UnlimitedChannel((*server)->address()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  v1::AnalyzeResponse response;
  grpc::Status s = stub->Analyze(&context, LongAnalyze(), &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  // The single worker gave up on the call soon after its deadline, so it serves again.
  const auto after = std::chrono::steady_clock::now();
  ASSERT_TRUE(WaitForInFlight(**server, 0));
  ExpectServesGoodRequest(*stub);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - after).count(), 20);
}

}  // namespace
}  // namespace kvcomp::testing

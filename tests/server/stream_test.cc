// CompressStream and DecompressStream: token blocks in, one answer per chunk, frames that decode
// alone, bit-exact reassembly by token offset, errors that name the chunk, message metrics.
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/server/server_fixture.h"
#include "tests/server/stream_helpers.h"

namespace kvcomp::testing {
namespace {

using ::testing::HasSubstr;

constexpr int kHeads = 4;
constexpr int kTokens = 1000;
constexpr int kBlock = 256;  // 4 blocks, the last one short

class StreamTest : public ServerTest {};

TEST_F(StreamTest, TokenBlocksRoundTripBitExact) {
  const v1::Tensor k = SyntheticTensor("layer3_k", 3, v1::TENSOR_KIND_K, kHeads, kTokens);
  const v1::Tensor v = SyntheticTensor("layer3_v", 3, v1::TENSOR_KIND_V, kHeads, kTokens);

  // Compress: one chunk per token block, holding that block of K and of V.
  std::vector<v1::CompressResponse> answers;
  {
    grpc::ClientContext context;
    auto stream = stub_->CompressStream(&context);
    for (int offset = 0; offset < kTokens; offset += kBlock) {
      const int count = std::min(kBlock, kTokens - offset);
      v1::CompressRequest chunk;
      chunk.set_codec("zstd(3)");
      *chunk.add_tensors() = TokenBlock(k, offset, count, 2);
      *chunk.add_tensors() = TokenBlock(v, offset, count, 2);
      ASSERT_TRUE(stream->Write(chunk));
      v1::CompressResponse answer;
      ASSERT_TRUE(stream->Read(&answer));
      ASSERT_EQ(answer.tensors_size(), 2);
      for (const v1::CompressedTensor& frame : answer.tensors()) {
        EXPECT_EQ(frame.token_offset(), static_cast<uint64_t>(offset));
        EXPECT_EQ(frame.total_tokens(), static_cast<uint64_t>(kTokens));
        EXPECT_EQ(frame.report().shape(1), count);
      }
      EXPECT_EQ(answer.totals().raw_bytes(), 2u * kHeads * count * 8 * 2);
      answers.push_back(std::move(answer));
    }
    ASSERT_TRUE(stream->WritesDone());
    v1::CompressResponse extra;
    EXPECT_FALSE(stream->Read(&extra));
    grpc::Status s = stream->Finish();
    ASSERT_TRUE(s.ok()) << s.error_code() << ": " << s.error_message();
  }
  ASSERT_EQ(answers.size(), 4u);

  // Any frame decodes alone, through the unary call too.
  {
    v1::DecompressRequest one;
    *one.add_tensors() = answers[2].tensors(1);
    v1::DecompressResponse back;
    grpc::ClientContext context;
    ASSERT_TRUE(stub_->Decompress(&context, one, &back).ok());
    ASSERT_EQ(back.tensors_size(), 1);
    EXPECT_EQ(back.tensors(0).raw_contents(), TokenBlock(v, 512, kBlock, 2).raw_contents());
    EXPECT_EQ(back.tensors(0).token_offset(), 512u);
  }

  // Decompress the chunks in reverse order and reassemble by offset.
  std::string k_back(k.raw_contents().size(), '\0'), v_back(v.raw_contents().size(), '\0');
  {
    grpc::ClientContext context;
    auto stream = stub_->DecompressStream(&context);
    for (auto it = answers.rbegin(); it != answers.rend(); ++it) {
      v1::DecompressRequest chunk;
      *chunk.mutable_tensors() = it->tensors();
      ASSERT_TRUE(stream->Write(chunk));
      v1::DecompressResponse answer;
      ASSERT_TRUE(stream->Read(&answer));
      ASSERT_EQ(answer.tensors_size(), 2);
      EXPECT_EQ(answer.tensors(0).name(), "layer3_k");
      EXPECT_EQ(answer.tensors(0).layer(), 3);
      EXPECT_EQ(answer.tensors(0).total_tokens(), static_cast<uint64_t>(kTokens));
      ASSERT_TRUE(PasteTokenBlock(answer.tensors(0), kTokens, 2, &k_back));
      ASSERT_TRUE(PasteTokenBlock(answer.tensors(1), kTokens, 2, &v_back));
    }
    ASSERT_TRUE(stream->WritesDone());
    grpc::Status s = stream->Finish();
    ASSERT_TRUE(s.ok()) << s.error_code() << ": " << s.error_message();
  }
  EXPECT_TRUE(k_back == k.raw_contents());
  EXPECT_TRUE(v_back == v.raw_contents());

  // go-grpc-prometheus message counters, by stream.
  const PromMetrics m = Scrape();
  const PromLabels compress_stream{{"grpc_service", "kvcomp.v1.KVCompressor"},
                                   {"grpc_method", "CompressStream"},
                                   {"grpc_type", "bidi_stream"}};
  EXPECT_EQ(m.Sum("grpc_server_msg_received_total", compress_stream), 4);
  EXPECT_EQ(m.Sum("grpc_server_msg_sent_total", compress_stream), 4);
  EXPECT_EQ(m.Sum("grpc_server_msg_received_total", {{"grpc_method", "DecompressStream"}}), 4);
  EXPECT_EQ(m.Sum("grpc_server_msg_sent_total", {{"grpc_method", "DecompressStream"}}), 4);
  EXPECT_EQ(
      m.Sum("grpc_server_handled_total", {{"grpc_method", "CompressStream"}, {"grpc_code", "OK"}}),
      1);
  EXPECT_EQ(m.Sum("grpc_server_msg_received_total", {{"grpc_method", "Decompress"}}), 1);
}

TEST_F(StreamTest, EmptyStreamFinishesOk) {
  grpc::ClientContext context;
  auto stream = stub_->CompressStream(&context);
  ASSERT_TRUE(stream->WritesDone());
  grpc::Status s = stream->Finish();
  EXPECT_TRUE(s.ok()) << s.error_code() << ": " << s.error_message();
}

TEST_F(StreamTest, BadChunkEndsTheStreamWithItsStatus) {
  const v1::Tensor k = SyntheticTensor("k", 0, v1::TENSOR_KIND_K, 2, 64);
  grpc::ClientContext context;
  auto stream = stub_->CompressStream(&context);
  v1::CompressRequest good;
  good.set_codec("zstd(3)");
  *good.add_tensors() = TokenBlock(k, 0, 32, 2);
  ASSERT_TRUE(stream->Write(good));
  v1::CompressResponse answer;
  ASSERT_TRUE(stream->Read(&answer));
  EXPECT_EQ(answer.tensors_size(), 1);

  v1::CompressRequest bad = good;
  bad.mutable_tensors(0)->set_datatype("FP8");
  stream->Write(bad);  // may fail once the server has finished
  EXPECT_FALSE(stream->Read(&answer));
  grpc::Status s = stream->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("chunk 1"));
  ExpectServesGoodRequest(*stub_);
}

TEST_F(StreamTest, CorruptFrameInDecompressStreamIsRefused) {
  v1::CompressRequest request;
  request.set_codec("zstd(3)");
  *request.add_tensors() = SyntheticTensor("k", 0, v1::TENSOR_KIND_K, 2, 64);
  v1::CompressResponse compressed;
  grpc::ClientContext c1;
  ASSERT_TRUE(stub_->Compress(&c1, request, &compressed).ok());

  grpc::ClientContext context;
  auto stream = stub_->DecompressStream(&context);
  v1::DecompressRequest chunk;
  *chunk.add_tensors() = compressed.tensors(0);
  std::string* frame = chunk.mutable_tensors(0)->mutable_frame();
  (*frame)[frame->size() / 2] ^= 0x5a;
  stream->Write(chunk);
  v1::DecompressResponse answer;
  EXPECT_FALSE(stream->Read(&answer));
  grpc::Status s = stream->Finish();
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.error_message(), HasSubstr("chunk 0"));
}

}  // namespace
}  // namespace kvcomp::testing

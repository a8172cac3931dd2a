// SerializeWithPayloads against protobuf's own parser: the bytes it writes parse as the reply
// with each payload in its entry, and a payload goes out as the caller's memory, not a copy.
#include "server/raw_reply.h"

#include <google/protobuf/util/message_differencer.h>
#include <grpcpp/support/proto_buffer_reader.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace kvcomp::server {
namespace {

using ::testing::HasSubstr;

v1::CompressResponse Parse(grpc::ByteBuffer* bytes) {
  grpc::ProtoBufferReader reader(bytes);
  v1::CompressResponse parsed;
  EXPECT_TRUE(parsed.ParseFromZeroCopyStream(&reader));
  return parsed;
}

std::vector<uint8_t> Bytes(size_t n, uint8_t seed) {
  std::vector<uint8_t> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(seed + i * 131);
  return out;
}

TEST(RawReplyTest, ParsesAsTheReplyWithItsPayloadsInPlace) {
  v1::CompressResponse reply;
  // Sizes whose length varints take 1, 2 and 3 bytes, and an empty payload.
  const std::vector<size_t> sizes = {5, 300, 0, 200'000};
  std::vector<Payload> payloads;
  v1::CompressResponse want;
  for (size_t i = 0; i < sizes.size(); ++i) {
    v1::CompressedTensor* entry = reply.add_tensors();
    entry->set_name("t" + std::to_string(i));
    entry->mutable_report()->set_raw_bytes(1000 + i);
    entry->set_token_offset(7 * i);
    payloads.emplace_back(Bytes(sizes[i], static_cast<uint8_t>(i)));
    *want.add_tensors() = *entry;
    want.mutable_tensors(static_cast<int>(i))
        ->set_frame(payloads.back().bytes().data(), payloads.back().size());
  }
  reply.mutable_totals()->set_raw_bytes(4006);
  *want.mutable_totals() = reply.totals();

  grpc::ByteBuffer bytes =
      SerializeWithPayloads(&reply, v1::CompressResponse::kTensorsFieldNumber,
                            v1::CompressedTensor::kFrameFieldNumber, std::move(payloads));
  EXPECT_EQ(bytes.Length(), want.ByteSizeLong());
  const v1::CompressResponse got = Parse(&bytes);
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(got, want))
      << got.ShortDebugString().substr(0, 400);
}

TEST(RawReplyTest, APayloadIsSentFromTheCallersMemory) {
  v1::CompressResponse reply;
  reply.add_tensors()->set_name("k");
  std::vector<Payload> payloads;
  payloads.emplace_back(Bytes(1 << 20, 3));
  const uint8_t* where = payloads[0].bytes().data();
  grpc::ByteBuffer bytes =
      SerializeWithPayloads(&reply, v1::CompressResponse::kTensorsFieldNumber,
                            v1::CompressedTensor::kFrameFieldNumber, std::move(payloads));
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(bytes.Dump(&slices).ok());
  int referenced = 0;
  for (const grpc::Slice& s : slices) referenced += s.begin() == where && s.size() == (1 << 20);
  EXPECT_EQ(referenced, 1);
}

TEST(RawReplyTest, GarbageRequestIsInvalidArgumentNamingTheMessage) {
  const std::string garbage("\x12\x05\x0a\x01", 4);  // tensors: 5 bytes promised, 2 present
  grpc::Slice slice(garbage);
  grpc::ByteBuffer request(&slice, 1), response;
  const absl::Status s = RunCompressRawUnary(request, &response, OpsOptions{});
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr("kvcomp.v1.CompressRequest"));
}

}  // namespace
}  // namespace kvcomp::server

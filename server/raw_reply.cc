#include "server/raw_reply.h"

#include <memory>
#include <string>
#include <utility>

#include <grpcpp/support/proto_buffer_reader.h>
#include <grpcpp/support/slice.h>

#include "absl/strings/str_cat.h"
#include "kvcomp/status_macros.h"

namespace kvcomp::server {
namespace {

void PutVarint(uint64_t v, std::string* out) {
  for (; v >= 0x80; v >>= 7) out->push_back(static_cast<char>(v | 0x80));
  out->push_back(static_cast<char>(v));
}

size_t VarintSize(uint64_t v) {
  size_t n = 1;
  for (; v >= 0x80; v >>= 7) ++n;
  return n;
}

// The key of a length-delimited field (wire type 2).
uint64_t LengthKey(int field) { return static_cast<uint64_t>(field) << 3 | 2; }

void DeleteBytes(void* bytes) { delete static_cast<std::vector<uint8_t>*>(bytes); }

}  // namespace

grpc::ByteBuffer SerializeWithPayloads(const google::protobuf::Message& reply, int entries_field,
                                       int bytes_field,
                                       std::vector<std::vector<uint8_t>> payloads) {
  const google::protobuf::FieldDescriptor* entries =
      reply.GetDescriptor()->FindFieldByNumber(entries_field);
  const google::protobuf::Reflection* reflection = reply.GetReflection();
  std::vector<grpc::Slice> slices;
  std::string head;  // the bytes before the next payload
  for (int i = 0; i < reflection->FieldSize(reply, entries); ++i) {
    const std::string entry = reflection->GetRepeatedMessage(reply, entries, i).SerializeAsString();
    std::vector<uint8_t> payload =
        static_cast<size_t>(i) < payloads.size() ? std::move(payloads[i]) : std::vector<uint8_t>{};
    // An empty payload is left out, as protobuf leaves out an empty bytes field.
    const uint64_t payload_field =
        payload.empty()
            ? 0
            : VarintSize(LengthKey(bytes_field)) + VarintSize(payload.size()) + payload.size();
    PutVarint(LengthKey(entries_field), &head);
    PutVarint(entry.size() + payload_field, &head);
    head += entry;
    if (payload.empty()) continue;
    PutVarint(LengthKey(bytes_field), &head);
    PutVarint(payload.size(), &head);
    slices.emplace_back(head);  // copies the (small) head
    head.clear();
    auto* owned = new std::vector<uint8_t>(std::move(payload));
    slices.emplace_back(owned->data(), owned->size(), &DeleteBytes, owned);
  }
  // Every other field of the reply, after the entries.
  std::unique_ptr<google::protobuf::Message> rest(reply.New());
  rest->CopyFrom(reply);
  rest->GetReflection()->ClearField(rest.get(), entries);
  head += rest->SerializeAsString();
  if (!head.empty()) slices.emplace_back(head);
  return grpc::ByteBuffer(slices.data(), slices.size());
}

namespace {

// Parses `request` as a Request, runs `run` and sends its payloads as field `bytes_field` of
// the reply's entries (field 1 of both replies).
template <typename Request, typename Reply>
absl::Status RunRaw(const grpc::ByteBuffer& request, grpc::ByteBuffer* response,
                    const OpsOptions& options, int bytes_field,
                    absl::Status (*run)(const Request&, Reply*, std::vector<std::vector<uint8_t>>*,
                                        const OpsOptions&)) {
  grpc::ByteBuffer bytes(request);  // shares the slices: the reader needs a mutable buffer
  grpc::ProtoBufferReader reader(&bytes);
  Request parsed;
  if (!reader.status().ok() || !parsed.ParseFromZeroCopyStream(&reader)) {
    return absl::InvalidArgumentError(
        absl::StrCat("the request is not a valid ", Request::descriptor()->full_name()));
  }
  Reply reply;
  std::vector<std::vector<uint8_t>> payloads;
  KV_RETURN_IF_ERROR(run(parsed, &reply, &payloads, options));
  *response = SerializeWithPayloads(reply, /*entries_field=*/1, bytes_field, std::move(payloads));
  return absl::OkStatus();
}

}  // namespace

absl::Status RunCompressRaw(const grpc::ByteBuffer& request, grpc::ByteBuffer* response,
                            const OpsOptions& options) {
  static_assert(v1::CompressResponse::kTensorsFieldNumber == 1);
  return RunRaw(request, response, options, v1::CompressedTensor::kFrameFieldNumber,
                &RunCompressFrames);
}

absl::Status RunDecompressRaw(const grpc::ByteBuffer& request, grpc::ByteBuffer* response,
                              const OpsOptions& options) {
  static_assert(v1::DecompressResponse::kTensorsFieldNumber == 1);
  return RunRaw(request, response, options, v1::Tensor::kRawContentsFieldNumber,
                &RunDecompressPayloads);
}

}  // namespace kvcomp::server

// Replies sent without copying their bulk. protobuf's serialisation copies every bytes field
// into gRPC's buffers, and a Compress frame would first be copied into its message: for 1 MiB
// tensors those two copies of each frame took 4-8% of the server's CPU (docs/BENCHMARKS.md), and
// a Decompress reply's tensors were copied once more.
// Here each entry of the reply's repeated message field is serialised without its bulk bytes
// field, which follows it on the wire as a slice that references (and owns) the bytes.
#pragma once

#include <cstdint>
#include <vector>

#include <google/protobuf/message.h>
#include <grpcpp/support/byte_buffer.h>

#include "absl/status/status.h"
#include "kvcomp/v1/kvcomp.pb.h"
#include "server/kvcomp_ops.h"
#include "server/payload.h"

namespace kvcomp::server {

// `*reply` serialised with `payloads[i]` as field `bytes_field` of entry i of the repeated message
// field `entries_field` (which the entries leave unset). Protobuf reads a message's fields in
// any order, so the result parses as the reply with the payloads in place. Consumes the reply's
// entries (they are cleared, so that the rest of it is serialised without a copy).
grpc::ByteBuffer SerializeWithPayloads(google::protobuf::Message* reply, int entries_field,
                                       int bytes_field, std::vector<Payload> payloads);

// Compress and Decompress on gRPC's raw bytes: each parses its request (INVALID_ARGUMENT naming
// the message when the bytes are not one), runs RunCompressFrames or RunDecompressPayloads and
// sends the frames or the decoded tensors with SerializeWithPayloads.
//
// What a call holds at once, for a stream's chunk (issue 27: "at most about two chunks"): the
// received bytes are released as soon as they are parsed (`request` is consumed), the parsed
// request as soon as its outputs exist, and the outputs go out without a copy. So the most is
// two chunks' worth: received and parsed, for a moment, or parsed and its outputs.
absl::Status RunCompressRaw(grpc::ByteBuffer* request, grpc::ByteBuffer* response,
                            const OpsOptions& options);
absl::Status RunDecompressRaw(grpc::ByteBuffer* request, grpc::ByteBuffer* response,
                              const OpsOptions& options);
// The same for a unary call's request, which gRPC holds for the call's length anyway.
absl::Status RunCompressRawUnary(const grpc::ByteBuffer& request, grpc::ByteBuffer* response,
                                 const OpsOptions& options);
absl::Status RunDecompressRawUnary(const grpc::ByteBuffer& request, grpc::ByteBuffer* response,
                                   const OpsOptions& options);

}  // namespace kvcomp::server

// The server's errors: absl::Status to grpc::Status, and the context added to a message on its
// way out. Conversions of the messages themselves are kvcomp/v1/convert.h, shared with the
// client.
#pragma once

#include <string>

#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace kvcomp::server {

// The same error with "`context`: " in front of its message.
absl::Status Annotate(const absl::Status& status, absl::string_view context);

// absl::StatusCode values equal gRPC's, so the code maps one to one. Caller strings are quoted
// bounded where messages are made (kvcomp/internal/quote.h); as a last guard, a message longer than
// kMaxStatusMessageBytes is cut, so that it always fits gRPC's default 8 KiB metadata limit.
inline constexpr size_t kMaxStatusMessageBytes = 2048;
grpc::Status ToGrpcStatus(const absl::Status& status);

// How an input tensor is named in error messages: "tensor 3 ('layer1_v')".
std::string TensorLabel(int index, absl::string_view name);

}  // namespace kvcomp::server

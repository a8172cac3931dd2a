#include "server/status_convert.h"

#include "absl/strings/str_cat.h"
#include "core/kvcomp/internal/quote.h"

namespace kvcomp::server {

absl::Status Annotate(const absl::Status& status, absl::string_view context) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(context, ": ", status.message()));
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  absl::string_view message = status.message();
  std::string cut;
  if (message.size() > kMaxStatusMessageBytes) {
    cut = absl::StrCat(message.substr(0, kMaxStatusMessageBytes), "... (message cut at ",
                       kMaxStatusMessageBytes, " of ", message.size(), " bytes)");
    message = cut;
  }
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(message));
}

std::string TensorLabel(int index, absl::string_view name) {
  if (name.empty()) return absl::StrCat("tensor ", index);
  return absl::StrCat("tensor ", index, " (", Quote(name), ")");
}

}  // namespace kvcomp::server

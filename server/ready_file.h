// The ready file: how a parent learns the ports the server bound (port 0 picks any).
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace kvcomp::server {

// "127.0.0.1:0" with port 41234 -> "127.0.0.1:41234". Works for "[::1]:0" too; a Unix socket
// ("unix:PATH") has no port and stays as it is.
std::string WithPort(absl::string_view address, int port);

// Writes `contents` to `path` atomically: a temp file in the same directory, fsync, rename.
absl::Status WriteFileAtomically(const std::string& path, absl::string_view contents);

}  // namespace kvcomp::server

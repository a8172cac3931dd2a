// A minimal HTTP/1.0 GET over loopback, enough to scrape /metrics.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace kvcomp::testing {

struct HttpResponse {
  int status = 0;
  std::string headers;  // raw, CRLF-separated
  std::string body;
};

// GET http://`host_port``path`; `host_port` must be "127.0.0.1:PORT" (loopback only).
absl::StatusOr<HttpResponse> HttpGet(const std::string& host_port, const std::string& path,
                                     double timeout_seconds = 10);

}  // namespace kvcomp::testing

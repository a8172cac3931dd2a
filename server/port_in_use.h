// Whether a listen address's TCP port is already taken, checked before gRPC binds it.
#ifndef KVCOMP_SERVER_PORT_IN_USE_H_
#define KVCOMP_SERVER_PORT_IN_USE_H_

#include <string>

#include "absl/status/status.h"

namespace kvcomp::server {

// FailedPrecondition when another socket listens on `listen` ("host:port", "[v6]:port"). gRPC
// binds with SO_REUSEPORT, and Debian's 1.51 ignores GRPC_ARG_ALLOW_REUSEPORT=0 (strace shows
// the option set regardless): a second server on a port in use would start and take half the
// clients (issue 25, finding 9). A probe bound without SO_REUSEPORT fails with EADDRINUSE
// instead. OK for port 0, unix sockets and names that do not resolve (gRPC reports those).
absl::Status CheckPortNotInUse(const std::string& listen);

}  // namespace kvcomp::server

#endif  // KVCOMP_SERVER_PORT_IN_USE_H_

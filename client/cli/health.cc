// kvcomp health --server HOST:PORT: the grpc.health.v1 check, for scripts.
#include <iostream>

#include "client/cli/common.h"

namespace kvcomp::cli {
namespace {

struct HealthFlags {
  std::string service;
  ServerFlags server;
};

int RunHealth(const HealthFlags& f) {
  auto client = Connect(f.server);
  if (!client.ok()) return Fail("health", kExitServer, client.status());
  absl::Status s = (*client)->Health(f.service);
  if (!s.ok()) return Fail("health", kExitServer, s);
  std::cout << "SERVING\n";
  return kExitOk;
}

}  // namespace

Command AddHealthCommand(CLI::App& root) {
  auto flags = std::make_shared<HealthFlags>();
  flags->server.timeout_seconds = 5;
  CLI::App* app = root.add_subcommand(
      "health", "Check that the server is SERVING (grpc.health.v1); exit 0 if so, else 3");
  app->add_option("--service", flags->service,
                  "service to check, e.g. kvcomp.v1.KVCompressor (default: the whole server)");
  AddServerFlags(app, &flags->server);
  return {app, [flags] { return RunHealth(*flags); }};
}

}  // namespace kvcomp::cli

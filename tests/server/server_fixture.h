// Shared pieces of the server integration tests: a started server with a stub, small
// synthetic tensors, and a /metrics scrape.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "kvcomp/v1/kvcomp.grpc.pb.h"
#include "tests/support/prom_text.h"
#include "tests/support/server_process.h"

namespace kvcomp::testing {

// A channel to `address` with no client-side message size limits, so any limit hit is the
// server's.
std::shared_ptr<grpc::Channel> UnlimitedChannel(const std::string& address);

// Starts a kvcomp-server (with `extra_args`) and a stub to it; fails the test if it cannot.
class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override { StartServer({}); }
  void StartServer(const std::vector<std::string>& extra_args);

  // A scrape of the server's /metrics, parsed; fails the test on error.
  PromMetrics Scrape();

  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<v1::KVCompressor::Stub> stub_;
};

// A head-major [heads, tokens, 8] tensor of smooth, not-all-equal FP16 values.
v1::Tensor SyntheticTensor(const std::string& name, int layer, v1::TensorKind kind, int heads,
                           int tokens);

// A Decompress request of `compressed`'s entries as a client sends them back: names and frames
// only, so that everything else must come from the frames.
v1::DecompressRequest NamesAndFrames(const v1::CompressResponse& compressed);

// Runs `command` through the shell with stderr joined to stdout, collects the output in
// `*output`, and returns its exit code (-1 when it did not exit normally).
int RunCommand(const std::string& command, std::string* output);

// The sum of metric `name` over all its series on `server`'s /metrics, or -1 on error.
double ScrapeSum(const ServerProcess& server, const std::string& name);

// Runs a zstd(3) round trip of a small tensor through `stub` and checks it is bit-exact:
// proof that the server still serves correctly.
void ExpectServesGoodRequest(v1::KVCompressor::Stub& stub);

}  // namespace kvcomp::testing

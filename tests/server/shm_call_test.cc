// The service's shared-memory checks in process: who counts as local, and what a call naming
// regions gets when the server serves none or the caller is not local. (The servers of the
// integration tests bind loopback only, so a remote peer is checked here.)
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "server/shm_call.h"

namespace kvcomp::server {
namespace {

using ::testing::HasSubstr;

TEST(ShmCallTest, OnlyUnixSocketsAndLoopbackAreLocal) {
  for (const char* peer : {"unix:/run/kvcomp.sock", "unix:", "ipv4:127.0.0.1:5000",
                           "ipv4:127.1.2.3:1", "ipv6:[::1]:5000", "ipv6:%5B::1%5D:5000"}) {
    EXPECT_TRUE(IsLocalPeer(peer)) << peer;
  }
  for (const char* peer : {"ipv4:10.0.0.1:5000", "ipv4:128.0.0.1:1", "ipv6:[::2]:5000",
                           "ipv6:[::ffff:10.0.0.1]:1", "ipv4:1127.0.0.1:1", "", "unknown"}) {
    EXPECT_FALSE(IsLocalPeer(peer)) << peer;
  }
}

TEST(ShmCallTest, ReferencesAreRefusedWithoutSessionsOrFromAfar) {
  v1::SharedMemoryRef ref;
  ref.set_region("kv");
  ref.set_byte_size(16);
  ShmAccess none;  // a server without --shm-socket
  CallRegions regions(none);
  auto got = regions.Input(ref, "tensor 0 ('k')");
  EXPECT_EQ(got.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(got.status().message()), HasSubstr("--shm-socket"));

  ShmSessions sessions({});
  auto token = sessions.Open(1, 1);
  ASSERT_TRUE(token.ok());
  ShmAccess remote{&sessions, *token, /*local=*/false};
  CallRegions from_afar(remote);
  got = from_afar.Input(ref, "tensor 0 ('k')");
  EXPECT_EQ(got.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(from_afar.Output(ref).status().code(), absl::StatusCode::kPermissionDenied);

  ShmAccess local{&sessions, *token, /*local=*/true};
  CallRegions here(local);
  got = here.Input(ref, "tensor 0 ('k')");
  EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(got.status().message()), HasSubstr("unknown region 'kv'"));
}

}  // namespace
}  // namespace kvcomp::server

// Shared-memory references in one call: each SharedMemoryRef resolved to its caller's region,
// checked against it, and the region held until the call ends (so unregistering it, or the
// client going away, mid-call unmaps nothing under the call).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "kvcomp/v1/kvcomp.pb.h"
#include "server/shm_region.h"
#include "server/shm_sessions.h"

namespace kvcomp::server {

// True for a gRPC peer on this host (context->peer()): a unix: socket or loopback. Region
// references are served to no one else.
bool IsLocalPeer(absl::string_view peer);

// What a call may do with shared memory.
struct ShmAccess {
  const ShmSessions* sessions = nullptr;  // null: the server serves no shared memory
  std::string session;                    // the caller's token (kvcomp-shm-session metadata)
  bool local = false;                     // the call came over a unix: socket or loopback
};

// Where one call's outputs go: a window of a region, filled in order, each output at the next
// offset (from the region's start) that is a multiple of kAlignment.
class OutputWindow {
 public:
  static constexpr uint64_t kAlignment = 64;
  OutputWindow(std::shared_ptr<const SharedRegion> region, uint64_t offset, uint64_t size)
      : region_(std::move(region)), begin_(offset), end_(offset + size), next_(offset) {}
  // Room for the next output of `bytes` (named `what` in errors): RESOURCE_EXHAUSTED saying how
  // much it needed and how much was left. Sets `where` to the range it takes.
  absl::StatusOr<absl::Span<uint8_t>> Place(uint64_t bytes, absl::string_view what,
                                            v1::SharedMemoryRef* where);

 private:
  std::shared_ptr<const SharedRegion> region_;
  uint64_t begin_, end_, next_;
};

class CallRegions {
 public:
  explicit CallRegions(const ShmAccess& access) : access_(access) {}

  // The bytes `ref` names, to read as input `what` (e.g. "tensor 2 ('layer1_k')"): errors say
  // what is wrong (FAILED_PRECONDITION when the server serves no shared memory, PERMISSION_DENIED
  // to a caller that is not local, INVALID_ARGUMENT for an unknown region or a range past it).
  absl::StatusOr<absl::Span<const uint8_t>> Input(const v1::SharedMemoryRef& ref,
                                                  absl::string_view what);
  // The output window `ref` names: the region must be writable, and the window may not overlap
  // any input range taken so far (INVALID_ARGUMENT).
  absl::StatusOr<OutputWindow> Output(const v1::SharedMemoryRef& ref);
  // True once any input came from shared memory.
  bool has_inputs() const { return !inputs_.empty(); }

 private:
  // The region `ref` names, its range checked (and the region held).
  absl::StatusOr<std::shared_ptr<const SharedRegion>> Resolve(const v1::SharedMemoryRef& ref,
                                                              absl::string_view what);
  const ShmAccess& access_;
  std::map<std::string, std::shared_ptr<const SharedRegion>> held_;
  std::vector<std::pair<const SharedRegion*, std::pair<uint64_t, uint64_t>>> inputs_;  // [b, e)
};

}  // namespace kvcomp::server

#include "server/shm_call.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/kvcomp/internal/quote.h"

namespace kvcomp::server {
namespace {

std::string Describe(const v1::SharedMemoryRef& ref) {
  return absl::StrCat("region ", Quote(ref.region()), " offset ", ref.offset(), " byte_size ",
                      ref.byte_size());
}

}  // namespace

bool IsLocalPeer(absl::string_view peer) {
  return absl::StartsWith(peer, "unix:") || absl::StartsWith(peer, "ipv4:127.") ||
         absl::StartsWith(peer, "ipv6:[::1]:") || absl::StartsWith(peer, "ipv6:%5B::1%5D:");
}

absl::StatusOr<absl::Span<uint8_t>> OutputWindow::Place(uint64_t bytes, absl::string_view what,
                                                        v1::SharedMemoryRef* where) {
  const uint64_t at = (next_ + kAlignment - 1) / kAlignment * kAlignment;
  if (at > end_ || bytes > end_ - at) {
    const uint64_t left = at >= end_ ? 0 : end_ - at;
    return absl::ResourceExhaustedError(absl::StrCat(
        what, ": needs ", bytes, " bytes of the output window (region ", Quote(region_->name()),
        " offset ", begin_, " byte_size ", end_ - begin_, "), which has ", left,
        " left after the outputs before it (each placed at a multiple of ", kAlignment,
        " bytes); the window must hold at least ", at - begin_ + bytes, " bytes up to this one"));
  }
  next_ = at + bytes;
  where->set_region(region_->name());
  where->set_offset(at);
  where->set_byte_size(bytes);
  return absl::MakeSpan(region_->data() + at, static_cast<size_t>(bytes));
}

absl::StatusOr<std::shared_ptr<const SharedRegion>> CallRegions::Resolve(
    const v1::SharedMemoryRef& ref, absl::string_view what) {
  if (access_.sessions == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, ": names shared memory (", Describe(ref),
                     "), which this server does not serve (start it with --shm-socket PATH)"));
  }
  if (!access_.local) {
    return absl::PermissionDeniedError(
        absl::StrCat(what,
                     ": shared-memory regions are served only to clients on a unix: "
                     "socket or loopback"));
  }
  std::shared_ptr<const SharedRegion>& held = held_[ref.region()];
  if (held == nullptr) {
    absl::StatusOr<std::shared_ptr<const SharedRegion>> found =
        access_.sessions->Find(access_.session, ref.region());
    if (!found.ok()) {
      held_.erase(ref.region());
      return absl::Status(found.status().code(),
                          absl::StrCat(what, ": ", found.status().message()));
    }
    held = *std::move(found);
  }
  if (ref.offset() > held->size() || ref.byte_size() > held->size() - ref.offset()) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": ", Describe(ref), " is past the end of the region (", held->size(), " bytes)"));
  }
  return held;
}

absl::StatusOr<absl::Span<const uint8_t>> CallRegions::Input(const v1::SharedMemoryRef& ref,
                                                             absl::string_view what) {
  absl::StatusOr<std::shared_ptr<const SharedRegion>> region = Resolve(ref, what);
  if (!region.ok()) return region.status();
  inputs_.push_back({region->get(), {ref.offset(), ref.offset() + ref.byte_size()}});
  return absl::MakeConstSpan((*region)->data() + ref.offset(),
                             static_cast<size_t>(ref.byte_size()));
}

absl::StatusOr<OutputWindow> CallRegions::Output(const v1::SharedMemoryRef& ref) {
  absl::StatusOr<std::shared_ptr<const SharedRegion>> region = Resolve(ref, "the output window");
  if (!region.ok()) return region.status();
  if (!(*region)->writable()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the output window: region ", Quote(ref.region()),
                     " is not writable (its memfd is sealed against writes, or was passed "
                     "read-only)"));
  }
  const uint64_t begin = ref.offset(), end = ref.offset() + ref.byte_size();
  for (const auto& [input, range] : inputs_) {
    if (input == region->get() && range.first < range.second && begin < end && range.first < end &&
        begin < range.second) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the output window (", Describe(ref), ") overlaps an input range of the same region (",
          range.first, "..", range.second, ")"));
    }
  }
  return OutputWindow(*std::move(region), ref.offset(), ref.byte_size());
}

}  // namespace kvcomp::server

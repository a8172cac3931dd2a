// One reply entry's bulk bytes, held until gRPC has sent them (server/raw_reply.h): a frame
// the codec made, moved in, or room a decoder fills.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "absl/types/span.h"

namespace kvcomp::server {

class Payload {
 public:
  Payload() = default;
  explicit Payload(std::vector<uint8_t> frame) : frame_(std::move(frame)) {}

  // `size` bytes left as they are, not zero-filled as std::vector's would be: a decoder writes
  // every one of them, so a fill would only be a second pass over the whole tensor.
  static Payload ForOverwrite(size_t size) {
    Payload p;
    p.room_ = std::make_unique_for_overwrite<uint8_t[]>(size);
    p.room_size_ = size;
    return p;
  }

  absl::Span<uint8_t> bytes() {
    return room_ != nullptr ? absl::MakeSpan(room_.get(), room_size_) : absl::MakeSpan(frame_);
  }
  size_t size() const { return room_ != nullptr ? room_size_ : frame_.size(); }
  bool empty() const { return size() == 0; }

 private:
  std::vector<uint8_t> frame_;
  std::unique_ptr<uint8_t[]> room_;
  size_t room_size_ = 0;
};

}  // namespace kvcomp::server

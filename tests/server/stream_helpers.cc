#include "tests/server/stream_helpers.h"

#include <cstring>

namespace kvcomp::testing {

v1::Tensor TokenBlockOf(const v1::Tensor& meta, const uint8_t* bytes, int64_t offset, int64_t count,
                        int element_bytes) {
  const int64_t heads = meta.shape(0), tokens = meta.shape(1), dim = meta.shape(2);
  v1::Tensor block;
  block.set_name(meta.name());
  block.set_layer(meta.layer());
  block.set_kind(meta.kind());
  block.set_datatype(meta.datatype());
  block.set_layout(meta.layout());
  block.add_shape(heads);
  block.add_shape(count);
  block.add_shape(dim);
  block.set_token_offset(static_cast<uint64_t>(offset));
  block.set_total_tokens(static_cast<uint64_t>(tokens));
  const size_t row = static_cast<size_t>(dim) * element_bytes;
  std::string* out = block.mutable_raw_contents();
  out->resize(static_cast<size_t>(heads * count) * row);
  for (int64_t h = 0; h < heads; ++h) {
    std::memcpy(out->data() + static_cast<size_t>(h * count) * row,
                bytes + static_cast<size_t>(h * tokens + offset) * row,
                static_cast<size_t>(count) * row);
  }
  return block;
}

v1::Tensor TokenBlock(const v1::Tensor& whole, int64_t offset, int64_t count, int element_bytes) {
  return TokenBlockOf(whole, reinterpret_cast<const uint8_t*>(whole.raw_contents().data()), offset,
                      count, element_bytes);
}

bool PasteTokenBlock(const v1::Tensor& block, int64_t total_tokens, int element_bytes,
                     std::string* whole_bytes) {
  if (block.shape_size() != 3) return false;
  const int64_t heads = block.shape(0), count = block.shape(1), dim = block.shape(2);
  const int64_t offset = static_cast<int64_t>(block.token_offset());
  const size_t row = static_cast<size_t>(dim) * element_bytes;
  if (offset + count > total_tokens ||
      whole_bytes->size() != static_cast<size_t>(heads * total_tokens) * row ||
      block.raw_contents().size() != static_cast<size_t>(heads * count) * row) {
    return false;
  }
  for (int64_t h = 0; h < heads; ++h) {
    std::memcpy(whole_bytes->data() + static_cast<size_t>(h * total_tokens + offset) * row,
                block.raw_contents().data() + static_cast<size_t>(h * count) * row,
                static_cast<size_t>(count) * row);
  }
  return true;
}

}  // namespace kvcomp::testing

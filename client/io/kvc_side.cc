#include "client/io/kvc_side.h"

#include <zstd.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/kvcomp/checksum.h"
#include "core/kvcomp/internal/byte_io.h"

namespace kvcomp::io {
namespace {

constexpr uint8_t kMagic[4] = {'K', 'V', 'C', 'S'};
constexpr uint8_t kVersion = 1;
constexpr uint8_t kStored = 0;
constexpr uint8_t kZstd = 1;
// Skeletons are small (a tenth of a state at most) and written once: the best level is cheap.
constexpr int kZstdLevel = 19;
// A skeleton is far below this; the bound keeps a damaged length from allocating much.
constexpr uint64_t kMaxRawBytes = uint64_t{1} << 32;

absl::Status Damaged(absl::string_view what) {
  return absl::DataLossError(absl::StrCat("side record: ", what));
}

}  // namespace

std::vector<uint8_t> EncodeSideRecord(const SideRecord& record) {
  std::vector<uint8_t> packed(ZSTD_compressBound(record.bytes.size()));
  const size_t n = ZSTD_compress(packed.data(), packed.size(), record.bytes.data(),
                                 record.bytes.size(), kZstdLevel);
  const bool zstd = !ZSTD_isError(n) && n < record.bytes.size();
  absl::Span<const uint8_t> payload =
      zstd ? absl::MakeConstSpan(packed.data(), n) : absl::MakeConstSpan(record.bytes);
  std::vector<uint8_t> out;
  ByteWriter w(&out);
  w.Bytes(kMagic);
  w.U8(kVersion);
  w.U64(0);  // the length, set below
  w.U8(static_cast<uint8_t>(record.source));
  w.U8(zstd ? kZstd : kStored);
  w.Varint(record.bytes.size());
  w.Bytes(payload);
  const uint64_t length = out.size() + 8;
  for (int i = 0; i < 8; ++i) out[5 + i] = static_cast<uint8_t>(length >> (8 * i));
  w.U64(FrameChecksum(out));
  return out;
}

absl::StatusOr<KvcSide> ReadSideRecord(absl::Span<const uint8_t> file) {
  KvcSide side;
  if (file.size() < 4 || std::memcmp(file.data(), kMagic, 4) != 0) return side;
  ByteReader r(file.subspan(4));
  uint8_t version;
  uint64_t length;
  if (!r.U8(&version) || !r.U64(&length)) return Damaged("truncated header");
  if (version != kVersion) {
    return absl::InvalidArgumentError(
        absl::StrCat("side record version ", int{version}, " (this build reads 1)"));
  }
  if (length < 4 + 1 + 8 + 2 + 1 + 8 || length > file.size()) {
    return Damaged(absl::StrCat("length ", length, " with ", file.size(), " bytes in the file"));
  }
  const auto body = file.first(length - 8);
  uint64_t stored = 0;
  for (int i = 0; i < 8; ++i) stored |= static_cast<uint64_t>(file[length - 8 + i]) << (8 * i);
  if (FrameChecksum(body) != stored) return Damaged("checksum mismatch");
  ByteReader b(body.subspan(13));
  uint8_t source, coding;
  uint64_t raw;
  if (!b.U8(&source) || !b.U8(&coding) || !b.Varint(&raw)) return Damaged("truncated fields");
  if (source != static_cast<uint8_t>(SideSource::kLlamaState)) {
    return absl::InvalidArgumentError(absl::StrCat("side record of source ", int{source},
                                                   ", which this build does not know (1: llama.cpp "
                                                   "sequence state)"));
  }
  if (raw > kMaxRawBytes) return Damaged(absl::StrCat("raw length ", raw));
  SideRecord rec;
  rec.source = SideSource::kLlamaState;
  const auto payload = b.rest();
  if (coding == kStored) {
    if (payload.size() != raw) return Damaged("stored payload length");
    rec.bytes.assign(payload.begin(), payload.end());
  } else if (coding == kZstd) {
    rec.bytes.resize(raw);
    const size_t n = ZSTD_decompress(rec.bytes.data(), raw, payload.data(), payload.size());
    if (ZSTD_isError(n) || n != raw) return Damaged("zstd payload");
  } else {
    return Damaged(absl::StrCat("coding ", int{coding}));
  }
  side.record = std::move(rec);
  side.record_bytes = length;
  return side;
}

}  // namespace kvcomp::io

#include "client/io/zip.h"

#include <zlib.h>

#include <cstring>
#include <limits>
#include <set>

#include "absl/strings/str_cat.h"
#include "core/kvcomp/internal/byte_io.h"
#include "core/kvcomp/internal/status_macros.h"

namespace kvcomp::io {
namespace {

constexpr uint32_t kLocalSig = 0x04034b50;
constexpr uint32_t kCentralSig = 0x02014b50;
constexpr uint32_t kEocdSig = 0x06054b50;
constexpr uint32_t kZip64EocdSig = 0x06064b50;
constexpr uint32_t kZip64LocatorSig = 0x07064b50;
constexpr uint16_t kZip64ExtraId = 0x0001;
constexpr uint32_t k32Max = 0xFFFFFFFF;
constexpr uint16_t k16Max = 0xFFFF;
constexpr size_t kEocdSize = 22;
constexpr size_t kCentralSize = 46;
constexpr size_t kLocalSize = 30;
constexpr size_t kZip64EocdSize = 56;
constexpr size_t kZip64LocatorSize = 20;
// DEFLATE cannot expand by more than about 1032:1.
constexpr uint64_t kMaxDeflateRatio = 1032;

absl::Status Bad(absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("bad zip archive: ", why));
}

uint16_t Le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t Le32(const uint8_t* p) {
  return uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 24);
}
uint64_t Le64(const uint8_t* p) { return uint64_t{Le32(p)} | (uint64_t{Le32(p + 4)} << 32); }

uint32_t Crc32(uint32_t crc, absl::Span<const uint8_t> data) {
  const uint8_t* p = data.data();
  size_t n = data.size();
  while (n > 0) {
    const uInt chunk = static_cast<uInt>(std::min<size_t>(n, 1u << 30));
    crc = static_cast<uint32_t>(::crc32(crc, p, chunk));
    p += chunk;
    n -= chunk;
  }
  return crc;
}

absl::Status Inflate(absl::Span<const uint8_t> in, std::vector<uint8_t>* out,
                     const std::string& name) {
  z_stream zs{};
  if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) return absl::InternalError("inflateInit2 failed");
  size_t in_pos = 0, out_pos = 0;
  int rc = Z_OK;
  while (true) {
    const size_t in_chunk = std::min<size_t>(in.size() - in_pos, 1u << 30);
    const size_t out_chunk = std::min<size_t>(out->size() - out_pos, 1u << 30);
    zs.next_in = const_cast<Bytef*>(in.data() + in_pos);
    zs.avail_in = static_cast<uInt>(in_chunk);
    zs.next_out = out->data() + out_pos;
    zs.avail_out = static_cast<uInt>(out_chunk);
    rc = inflate(&zs, Z_NO_FLUSH);
    in_pos += in_chunk - zs.avail_in;
    out_pos += out_chunk - zs.avail_out;
    if (rc == Z_STREAM_END) break;
    if (rc != Z_OK && rc != Z_BUF_ERROR) break;
    // No progress possible: input exhausted or output full before the end of the stream.
    if (in_chunk - zs.avail_in == 0 && out_chunk - zs.avail_out == 0) break;
  }
  inflateEnd(&zs);
  if (rc != Z_STREAM_END) {
    return absl::DataLossError(absl::StrCat("bad zip archive: entry '", name,
                                            "' does not inflate (", out_pos, " of ", out->size(),
                                            " bytes decoded, zlib code ", rc, ")"));
  }
  if (out_pos != out->size() || in_pos != in.size()) {
    return absl::DataLossError(
        absl::StrCat("bad zip archive: entry '", name, "' inflates to ", out_pos, " bytes from ",
                     in_pos, " but the directory says ", out->size(), " from ", in.size()));
  }
  return absl::OkStatus();
}

// Applies the zip64 extra field to the 32-bit values that are saturated.
absl::Status ApplyZip64Extra(absl::Span<const uint8_t> extra, uint64_t* usize, uint64_t* csize,
                             uint64_t* offset) {
  size_t pos = 0;
  while (extra.size() - pos >= 4) {
    const uint16_t id = Le16(extra.data() + pos);
    const uint16_t len = Le16(extra.data() + pos + 2);
    if (extra.size() - pos - 4 < len) return Bad("extra field runs past its record");
    if (id == kZip64ExtraId) {
      ByteReader r(extra.subspan(pos + 4, len));
      if (*usize == k32Max && !r.U64(usize)) return Bad("zip64 extra lacks the size");
      if (*csize == k32Max && !r.U64(csize)) return Bad("zip64 extra lacks the compressed size");
      if (offset && *offset == k32Max && !r.U64(offset)) {
        return Bad("zip64 extra lacks the offset");
      }
      return absl::OkStatus();
    }
    pos += 4 + len;
  }
  if (*usize == k32Max || *csize == k32Max || (offset && *offset == k32Max)) {
    return Bad("saturated 32-bit field without a zip64 extra field");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<ZipEntry>> ReadZip(absl::Span<const uint8_t> a,
                                              const ZipReadLimits& limits) {
  if (a.size() < kEocdSize) return Bad("truncated: too short for an end-of-central-directory");
  // The end record sits at the end, before a comment of up to 65535 bytes.
  size_t eocd = std::string::npos;
  const size_t lowest = a.size() > kEocdSize + 65535 ? a.size() - kEocdSize - 65535 : 0;
  for (size_t p = a.size() - kEocdSize + 1; p-- > lowest;) {
    if (Le32(a.data() + p) == kEocdSig && p + kEocdSize + Le16(a.data() + p + 20) == a.size()) {
      eocd = p;
      break;
    }
  }
  if (eocd == std::string::npos) {
    return Bad("no end-of-central-directory record (truncated, or not a zip file)");
  }
  const uint8_t* e = a.data() + eocd;
  if (Le16(e + 4) != 0 || Le16(e + 6) != 0 || Le16(e + 8) != Le16(e + 10)) {
    return Bad("multi-disk archives are not supported");
  }
  uint64_t count = Le16(e + 10);
  uint64_t cd_size = Le32(e + 12);
  uint64_t cd_offset = Le32(e + 16);
  uint64_t cd_end_limit = eocd;
  if (eocd >= kZip64LocatorSize && Le32(a.data() + eocd - kZip64LocatorSize) == kZip64LocatorSig) {
    const uint8_t* loc = a.data() + eocd - kZip64LocatorSize;
    const uint64_t z64 = Le64(loc + 8);
    if (z64 > eocd - kZip64LocatorSize || eocd - kZip64LocatorSize - z64 < kZip64EocdSize) {
      return Bad("zip64 end record offset out of range");
    }
    const uint8_t* z = a.data() + z64;
    if (Le32(z) != kZip64EocdSig) return Bad("zip64 end record signature missing");
    if (Le32(z + 16) != 0 || Le32(z + 20) != 0 || Le64(z + 24) != Le64(z + 32)) {
      return Bad("multi-disk archives are not supported");
    }
    count = Le64(z + 32);
    cd_size = Le64(z + 40);
    cd_offset = Le64(z + 48);
    cd_end_limit = z64;
  } else if (count == k16Max || cd_size == k32Max || cd_offset == k32Max) {
    return Bad("saturated end record without a zip64 locator");
  }
  if (cd_offset > cd_end_limit || cd_end_limit - cd_offset < cd_size) {
    return Bad(absl::StrCat("central directory (offset ", cd_offset, ", ", cd_size,
                            " bytes) lies outside the archive"));
  }
  if (count > limits.max_entries || count > cd_size / kCentralSize) {
    return Bad(absl::StrCat("entry count ", count, " does not fit the central directory"));
  }
  std::vector<ZipEntry> out;
  out.reserve(count);
  std::set<std::string> names;
  size_t pos = cd_offset;
  const size_t cd_end = cd_offset + cd_size;
  for (uint64_t i = 0; i < count; ++i) {
    if (cd_end - pos < kCentralSize) return Bad("central directory truncated");
    const uint8_t* c = a.data() + pos;
    if (Le32(c) != kCentralSig) return Bad("central directory entry signature missing");
    const uint16_t flags = Le16(c + 8);
    const uint16_t method = Le16(c + 10);
    const uint32_t crc = Le32(c + 16);
    uint64_t csize = Le32(c + 20);
    uint64_t usize = Le32(c + 24);
    const uint16_t nlen = Le16(c + 28), xlen = Le16(c + 30), clen = Le16(c + 32);
    uint64_t offset = Le32(c + 42);
    if (cd_end - pos - kCentralSize < size_t{nlen} + xlen + clen) {
      return Bad("central directory entry runs past the directory");
    }
    std::string name(reinterpret_cast<const char*>(c + kCentralSize), nlen);
    const size_t name_pos = pos + kCentralSize;
    const uint16_t entry_name_len = nlen;
    KV_RETURN_IF_ERROR(ApplyZip64Extra(absl::MakeConstSpan(c + kCentralSize + nlen, xlen), &usize,
                                       &csize, &offset));
    pos += kCentralSize + nlen + xlen + clen;
    if (flags & 0x41) return Bad(absl::StrCat("entry '", name, "' is encrypted"));
    if (method != 0 && method != 8) {
      return Bad(absl::StrCat("entry '", name, "' uses compression method ", method,
                              " (only stored and deflate are supported)"));
    }
    if (!names.insert(name).second) return Bad(absl::StrCat("duplicate entry '", name, "'"));
    // The local header repeats the name; its extra field may differ in length.
    if (offset > cd_offset || cd_offset - offset < kLocalSize) {
      return Bad(absl::StrCat("entry '", name, "' has a local header outside the archive"));
    }
    const uint8_t* l = a.data() + offset;
    if (Le32(l) != kLocalSig) {
      return Bad(absl::StrCat("entry '", name, "' local header signature missing"));
    }
    if (cd_offset - offset - kLocalSize < entry_name_len || Le16(l + 26) != entry_name_len ||
        std::memcmp(l + kLocalSize, a.data() + name_pos, entry_name_len) != 0) {
      return Bad(absl::StrCat("entry '", name, "' has a different name in its local header"));
    }
    const uint64_t data_start = offset + kLocalSize + Le16(l + 26) + Le16(l + 28);
    if (data_start > cd_offset || cd_offset - data_start < csize) {
      return Bad(absl::StrCat("entry '", name, "' data (", csize,
                              " bytes) runs past the central directory (truncated?)"));
    }
    if (usize > limits.max_entry_bytes) {
      return Bad(absl::StrCat("entry '", name, "' claims ", usize, " bytes, above the limit"));
    }
    auto data = a.subspan(data_start, csize);
    ZipEntry entry;
    entry.name = std::move(name);
    if (method == 0) {
      if (usize != csize) {
        return Bad(absl::StrCat("stored entry '", entry.name, "' has size ", usize,
                                " but compressed size ", csize));
      }
      entry.data.assign(data.begin(), data.end());
    } else {
      if (usize > csize * kMaxDeflateRatio + 1024) {
        return Bad(absl::StrCat("entry '", entry.name, "' claims ", usize, " bytes from ", csize,
                                ": impossible for deflate"));
      }
      entry.data.resize(usize);
      KV_RETURN_IF_ERROR(Inflate(data, &entry.data, entry.name));
    }
    const uint32_t got = Crc32(0, entry.data);
    if (got != crc) {
      return absl::DataLossError(
          absl::StrCat("bad zip archive: entry '", entry.name, "' fails its CRC-32 check"));
    }
    out.push_back(std::move(entry));
  }
  return out;
}

absl::Status WriteZip(const std::vector<ZipWriteEntry>& entries, Sink& sink,
                      const ZipWriteOptions& options) {
  std::vector<uint8_t> central;
  ByteWriter cw(&central);
  uint64_t offset = 0;
  const uint16_t kDosTime = 0, kDosDate = (0 << 9) | (1 << 5) | 1;  // 1980-01-01 00:00
  for (const ZipWriteEntry& e : entries) {
    if (e.name.empty() || e.name.size() > 0xFFFF) {
      return absl::InvalidArgumentError(absl::StrCat("bad zip entry name '", e.name, "'"));
    }
    uint64_t size = 0;
    uint32_t crc = 0;
    for (auto part : e.parts) {
      size += part.size();
      crc = Crc32(crc, part);
    }
    const bool z64_size = options.force_zip64 || size >= k32Max;
    const bool z64_offset = options.force_zip64 || offset >= k32Max;
    const uint16_t version = (z64_size || z64_offset) ? 45 : 20;

    std::vector<uint8_t> local;
    ByteWriter lw(&local);
    lw.U32(kLocalSig);
    lw.U8(version & 0xFF);
    lw.U8(version >> 8);
    auto u16 = [](ByteWriter& w, uint16_t v) {
      w.U8(v & 0xFF);
      w.U8(v >> 8);
    };
    u16(lw, 0);  // flags
    u16(lw, 0);  // stored
    u16(lw, kDosTime);
    u16(lw, kDosDate);
    lw.U32(crc);
    lw.U32(z64_size ? k32Max : static_cast<uint32_t>(size));
    lw.U32(z64_size ? k32Max : static_cast<uint32_t>(size));
    u16(lw, static_cast<uint16_t>(e.name.size()));
    u16(lw, z64_size ? 20 : 0);
    lw.Bytes(absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(e.name.data()), e.name.size()));
    if (z64_size) {
      u16(lw, kZip64ExtraId);
      u16(lw, 16);
      lw.U64(size);
      lw.U64(size);
    }
    KV_RETURN_IF_ERROR(sink.Write(local));
    for (auto part : e.parts) KV_RETURN_IF_ERROR(sink.Write(part));

    const uint16_t extra_len = (z64_size ? 16 : 0) + (z64_offset ? 8 : 0);
    cw.U32(kCentralSig);
    u16(cw, version);  // made by: MS-DOS attributes, this spec version
    u16(cw, version);
    u16(cw, 0);
    u16(cw, 0);
    u16(cw, kDosTime);
    u16(cw, kDosDate);
    cw.U32(crc);
    cw.U32(z64_size ? k32Max : static_cast<uint32_t>(size));
    cw.U32(z64_size ? k32Max : static_cast<uint32_t>(size));
    u16(cw, static_cast<uint16_t>(e.name.size()));
    u16(cw, extra_len ? extra_len + 4 : 0);
    u16(cw, 0);  // comment
    u16(cw, 0);  // disk
    u16(cw, 0);  // internal attributes
    cw.U32(0);   // external attributes
    cw.U32(z64_offset ? k32Max : static_cast<uint32_t>(offset));
    cw.Bytes(absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(e.name.data()), e.name.size()));
    if (extra_len) {
      u16(cw, kZip64ExtraId);
      u16(cw, extra_len);
      if (z64_size) {
        cw.U64(size);
        cw.U64(size);
      }
      if (z64_offset) cw.U64(offset);
    }
    offset += local.size() + size;
  }
  const uint64_t cd_offset = offset;
  const uint64_t cd_size = central.size();
  const uint64_t count = entries.size();
  const bool z64_end =
      options.force_zip64 || count >= k16Max || cd_offset >= k32Max || cd_size >= k32Max;
  std::vector<uint8_t>& tail = central;
  ByteWriter tw(&tail);
  auto u16 = [](ByteWriter& w, uint16_t v) {
    w.U8(v & 0xFF);
    w.U8(v >> 8);
  };
  if (z64_end) {
    const uint64_t z64_offset = cd_offset + cd_size;
    tw.U32(kZip64EocdSig);
    tw.U64(kZip64EocdSize - 12);
    u16(tw, 45);
    u16(tw, 45);
    tw.U32(0);
    tw.U32(0);
    tw.U64(count);
    tw.U64(count);
    tw.U64(cd_size);
    tw.U64(cd_offset);
    tw.U32(kZip64LocatorSig);
    tw.U32(0);
    tw.U64(z64_offset);
    tw.U32(1);
  }
  tw.U32(kEocdSig);
  u16(tw, 0);
  u16(tw, 0);
  u16(tw, z64_end ? k16Max : static_cast<uint16_t>(count));
  u16(tw, z64_end ? k16Max : static_cast<uint16_t>(count));
  tw.U32(z64_end ? k32Max : static_cast<uint32_t>(cd_size));
  tw.U32(z64_end ? k32Max : static_cast<uint32_t>(cd_offset));
  u16(tw, 0);
  return sink.Write(tail);
}

}  // namespace kvcomp::io

#include "core/kvcomp/frame.h"

#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/kvcomp/checksum.h"
#include "core/kvcomp/internal/byte_io.h"
#include "core/kvcomp/registry.h"

namespace kvcomp {
namespace {

// magic(4) version(1) length(8): enough to find the frame's end.
constexpr size_t kPrefixBytes = 13;

absl::Status Corrupt(absl::string_view what) {
  return absl::DataLossError(absl::StrCat("corrupt frame: ", what));
}

// The schema's types give each value's encoding; a value past the schema (a malformed header,
// which no reader accepts) is written as an integer.
// `stage.values` were checked against `info.params` (CheckParams): one value per parameter, so
// each is written as its schema's type says.
void WriteParams(const StageInfo& info, const FrameStage& stage, ByteWriter& w) {
  w.U8(static_cast<uint8_t>(stage.values.size()));
  for (size_t i = 0; i < stage.values.size(); ++i) {
    if (info.params[i].type == ParamType::kFloat) {
      w.F64(stage.values[i]);
    } else {
      w.SignedVarint(static_cast<int64_t>(stage.values[i]));
    }
  }
}

}  // namespace

absl::StatusOr<std::vector<uint8_t>> WriteFrame(
    const FrameHeader& header, const std::vector<absl::Span<const uint8_t>>& streams) {
  std::vector<uint8_t> out;
  uint64_t payload = 0;
  for (const auto& s : streams) payload += s.size();
  out.reserve(64 + payload);
  ByteWriter w(&out);
  for (char c : kFrameMagic) w.U8(static_cast<uint8_t>(c));
  w.U8(header.version);
  w.U64(0);  // length, patched below
  w.U8(static_cast<uint8_t>(header.meta.dtype));
  w.U8(static_cast<uint8_t>(header.meta.layout));
  w.U8(static_cast<uint8_t>(header.meta.kind));
  w.SignedVarint(header.meta.layer);
  w.U8(static_cast<uint8_t>(header.meta.shape.size()));
  for (int64_t d : header.meta.shape) w.Varint(static_cast<uint64_t>(d));
  w.U8(static_cast<uint8_t>(header.stages.size()));
  for (const FrameStage& st : header.stages) {
    const StageInfo* info = StageRegistry::Get().FindById(st.id);
    if (info == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot write a frame with stage ID ", st.id, ": no such stage"));
    }
    // A value the schema does not hold (one too many, an int that is not whole, out of range)
    // would be written as something else and read back as a different stage.
    if (absl::Status s = CheckParams(*info, st.values); !s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot write a frame with stage ", info->name, ": ", s.message()));
    }
    w.U8(st.id);
    WriteParams(*info, st, w);
  }
  w.Varint(streams.size());
  for (const auto& s : streams) w.Varint(s.size());
  for (const auto& s : streams) w.Bytes(s);
  const uint64_t length = out.size() + kFrameChecksumBytes;
  for (int i = 0; i < 8; ++i) out[5 + i] = static_cast<uint8_t>(length >> (8 * i));
  w.U64(FrameChecksum(out));
  return out;
}

absl::StatusOr<uint64_t> PeekFrameLength(absl::Span<const uint8_t> data) {
  if (data.size() < kPrefixBytes) {
    return Corrupt(absl::StrCat("truncated: ", data.size(), " bytes is shorter than a header"));
  }
  if (std::memcmp(data.data(), kFrameMagic, 4) != 0)
    return Corrupt("bad magic (not a kvcomp frame)");
  ByteReader r(data.subspan(4));
  uint8_t version;
  uint64_t length;
  r.U8(&version);
  r.U64(&length);
  if (version == 0 || version > kFrameVersion) {
    return absl::InvalidArgumentError(absl::StrCat("frame version ", version,
                                                   " is not supported by this build (reads 1..",
                                                   kFrameVersion, ")"));
  }
  if (length < kPrefixBytes + kFrameChecksumBytes) return Corrupt("length field too small");
  if (length > data.size()) {
    return Corrupt(
        absl::StrCat("truncated: frame says ", length, " bytes, only ", data.size(), " present"));
  }
  return length;
}

absl::StatusOr<ParsedFrame> ParseFrame(absl::Span<const uint8_t> data) {
  auto length_or = PeekFrameLength(data);
  if (!length_or.ok()) return length_or.status();
  const uint64_t length = *length_or;
  const auto body = data.subspan(0, length - kFrameChecksumBytes);
  ByteReader tail(data.subspan(length - kFrameChecksumBytes, kFrameChecksumBytes));
  uint64_t stored = 0;
  tail.U64(&stored);
  if (FrameChecksum(body) != stored) return Corrupt("checksum mismatch");

  ParsedFrame f;
  f.frame_bytes = length;
  f.checksum = stored;
  ByteReader r(body.subspan(kPrefixBytes));
  f.header.version = data[4];
  uint8_t dtype, layout, kind, rank, nstages;
  int64_t layer;
  if (!r.U8(&dtype) || !r.U8(&layout) || !r.U8(&kind) || !r.SignedVarint(&layer) || !r.U8(&rank)) {
    return Corrupt("header cut short");
  }
  if (!IsValidDType(dtype)) return Corrupt(absl::StrCat("unknown dtype ", dtype));
  if (layout != 1 && layout != 2) return Corrupt(absl::StrCat("unknown layout ", layout));
  if (kind > 2) return Corrupt(absl::StrCat("unknown kind ", kind));
  if (layer < -1 || layer > INT32_MAX) return Corrupt(absl::StrCat("layer ", layer));
  if (rank == 0 || rank > kMaxRank) return Corrupt(absl::StrCat("rank ", rank));
  TensorMeta& meta = f.header.meta;
  meta.dtype = static_cast<DType>(dtype);
  meta.layout = static_cast<Layout>(layout);
  meta.kind = static_cast<Kind>(kind);
  meta.layer = static_cast<int32_t>(layer);
  for (int i = 0; i < rank; ++i) {
    uint64_t d;
    if (!r.Varint(&d) || d > (uint64_t{1} << 56)) return Corrupt("bad shape");
    meta.shape.push_back(static_cast<int64_t>(d));
  }
  if (absl::Status s = meta.Validate(); !s.ok()) return Corrupt(s.message());

  if (!r.U8(&nstages) || nstages == 0 || nstages > kMaxStages) {
    return Corrupt("bad stage count");
  }
  for (int i = 0; i < nstages; ++i) {
    FrameStage st;
    uint8_t nparams;
    if (!r.U8(&st.id) || !r.U8(&nparams)) return Corrupt("stage list cut short");
    const StageInfo* info = StageRegistry::Get().FindById(st.id);
    if (!info) {
      return absl::InvalidArgumentError(
          absl::StrCat("frame uses stage id ", st.id, ", which this build does not know"));
    }
    if (nparams != info->params.size()) {
      return Corrupt(absl::StrCat("stage '", info->name, "' has ", nparams,
                                  " parameters, expected ", info->params.size()));
    }
    for (int p = 0; p < nparams; ++p) {
      double v;
      if (info->params[p].type == ParamType::kFloat) {
        if (!r.F64(&v)) return Corrupt("parameters cut short");
      } else {
        int64_t iv;
        if (!r.SignedVarint(&iv)) return Corrupt("parameters cut short");
        v = static_cast<double>(iv);
      }
      st.values.push_back(v);
    }
    f.header.stages.push_back(std::move(st));
  }

  uint64_t nstreams;
  if (!r.Varint(&nstreams) || nstreams > kMaxStreams) return Corrupt("bad stream count");
  uint64_t total = 0;
  for (uint64_t i = 0; i < nstreams; ++i) {
    uint64_t n;
    if (!r.Varint(&n) || n > length) return Corrupt("bad stream length");
    total += n;
    f.header.stream_bytes.push_back(n);
  }
  if (total != r.remaining()) {
    return Corrupt(
        absl::StrCat("streams claim ", total, " bytes but the payload holds ", r.remaining()));
  }
  for (uint64_t n : f.header.stream_bytes) {
    absl::Span<const uint8_t> s;
    r.Bytes(n, &s);
    f.streams.push_back(s);
  }
  return f;
}

absl::StatusOr<std::vector<absl::Span<const uint8_t>>> SplitFrames(absl::Span<const uint8_t> data) {
  std::vector<absl::Span<const uint8_t>> frames;
  size_t pos = 0;
  while (pos < data.size()) {
    auto n = PeekFrameLength(data.subspan(pos));
    if (!n.ok()) {
      return absl::Status(n.status().code(), absl::StrCat("frame ", frames.size(), " at byte ", pos,
                                                          ": ", n.status().message()));
    }
    frames.push_back(data.subspan(pos, *n));
    pos += *n;
  }
  return frames;
}

bool GroupedByLayerKind(const TensorMeta& meta) {
  return meta.layer >= 0 && meta.kind != Kind::kUnspecified;
}

std::vector<std::vector<size_t>> TensorFrames(absl::Span<const ParsedFrame> frames) {
  std::vector<std::vector<size_t>> tensors;
  std::map<std::pair<int32_t, Kind>, size_t> by_layer_kind;
  for (size_t i = 0; i < frames.size(); ++i) {
    const TensorMeta& m = frames[i].header.meta;
    if (GroupedByLayerKind(m)) {
      auto [it, added] = by_layer_kind.emplace(std::make_pair(m.layer, m.kind), tensors.size());
      if (!added) {
        tensors[it->second].push_back(i);
        continue;
      }
    }
    tensors.push_back({i});
  }
  return tensors;
}

}  // namespace kvcomp

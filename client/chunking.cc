#include "client/chunking.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "core/kvcomp/frame.h"
#include "core/kvcomp/internal/status_macros.h"
#include "core/kvcomp/token_blocks.h"

namespace kvcomp::client {

int64_t HeaderRoom(int64_t message_bytes) {
  return std::min<int64_t>(message_bytes / 16, int64_t{64} << 10);
}

int64_t EffectiveThreshold(const ClientOptions& o) {
  if (o.stream_threshold_bytes > 0) return o.stream_threshold_bytes;
  const int64_t m = std::min<int64_t>(o.max_message_bytes, kDefaultChunkBytes);
  return m - HeaderRoom(m);
}

uint64_t HardLimit(const ClientOptions& o) {
  return static_cast<uint64_t>(o.max_message_bytes - HeaderRoom(o.max_message_bytes));
}

std::vector<std::vector<Piece>> Pack(std::vector<Piece> pieces, uint64_t budget) {
  std::vector<std::vector<Piece>> chunks;
  uint64_t used = 0;
  for (Piece& p : pieces) {
    if (chunks.empty() || used + p.cost > budget) {
      chunks.emplace_back();
      used = 0;
    }
    used += p.cost;
    chunks.back().push_back(std::move(p));
  }
  return chunks;
}

absl::StatusOr<std::vector<Piece>> CutTensors(absl::Span<const io::NamedTensor> tensors,
                                              uint64_t threshold, uint64_t hard_limit) {
  std::vector<Piece> pieces;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorMeta& m = tensors[i].tensor.meta;
    const uint64_t bytes = tensors[i].tensor.bytes.size();
    // Malformed tensors go whole: the server names what is wrong with them.
    const bool valid = m.Validate().ok() && m.NumBytes() == bytes;
    if (bytes + kPerTensorOverhead <= threshold || !valid) {
      pieces.push_back({i, 0, -1, bytes + kPerTensorOverhead, {}});
      continue;
    }
    const Geometry g = GeometryOf(m);
    const uint64_t token_bytes = g.planes * g.cols * DTypeSize(m.dtype);
    uint64_t per = threshold > kPerTensorOverhead + token_bytes
                       ? (threshold - kPerTensorOverhead) / token_bytes
                       : 0;
    if (per == 0 && token_bytes + kPerTensorOverhead <= hard_limit) per = 1;
    if (per == 0) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "Compress: one token of tensor '", tensors[i].name, "' is ", token_bytes,
          " bytes, above the client's limit of ", hard_limit, " bytes (max message size)"));
    }
    for (uint64_t offset = 0; offset < g.rows; offset += per) {
      const uint64_t count = std::min(per, g.rows - offset);
      pieces.push_back({i,
                        static_cast<int64_t>(offset),
                        static_cast<int64_t>(count),
                        count * token_bytes + kPerTensorOverhead,
                        {}});
    }
  }
  return pieces;
}

void TokenBlockToProto(const io::NamedTensor& t, int64_t offset, int64_t count, v1::Tensor* out) {
  const TensorMeta& m = t.tensor.meta;
  io::NamedTensor meta_only{t.name, Tensor{TokenBlockMeta(m, static_cast<uint64_t>(count)), {}}};
  ToProto(meta_only, out);
  out->set_token_offset(static_cast<uint64_t>(offset));
  out->set_total_tokens(GeometryOf(m).rows);
  std::string* raw = out->mutable_raw_contents();
  raw->resize(TokenBytes(m) * static_cast<uint64_t>(count));
  GatherTokens(m, t.tensor.bytes.data(), static_cast<uint64_t>(offset),
               static_cast<uint64_t>(count), reinterpret_cast<uint8_t*>(raw->data()));
}

absl::StatusOr<io::NamedTensor> ConcatTokenBlocks(std::vector<io::NamedTensor> blocks) {
  io::NamedTensor out;
  out.name = blocks[0].name;
  TensorMeta& m = out.tensor.meta;
  m = blocks[0].tensor.meta;
  const size_t axis = TokenAxis(m);
  int64_t tokens = 0;
  for (const io::NamedTensor& b : blocks) {
    if (!SameTensorApartFromTokens(m, b.tensor.meta)) {
      return absl::InvalidArgumentError(absl::StrCat("Decompress: the token blocks of '", out.name,
                                                     "' disagree: ", b.tensor.meta.ShapeString(),
                                                     " after ",
                                                     blocks[0].tensor.meta.ShapeString()));
    }
    tokens += b.tensor.meta.shape[axis];
  }
  m.shape[axis] = tokens;
  KV_RETURN_IF_ERROR(m.Validate());
  out.tensor.bytes.resize(m.NumBytes());
  uint64_t offset = 0;
  for (io::NamedTensor& b : blocks) {
    const uint64_t count = static_cast<uint64_t>(b.tensor.meta.shape[axis]);
    ScatterTokens(m, out.tensor.bytes.data(), offset, count, b.tensor.bytes.data());
    offset += count;
    b.tensor.bytes = {};
  }
  return out;
}

TensorReport MergeBlockReports(const std::vector<TensorReport>& blocks, const TensorMeta& whole) {
  std::vector<kvcomp::TensorReport> core;
  for (const TensorReport& b : blocks) {
    kvcomp::TensorReport& c = core.emplace_back();
    c.raw_bytes = b.raw_bytes;
    c.compressed_bytes = b.compressed_bytes;
    c.spec = b.codec;
    c.lossless = b.lossless;
    c.error = b.error;
  }
  const kvcomp::TensorReport merged = kvcomp::MergeBlockReports(core, whole);
  TensorReport out = blocks[0];
  out.shape = whole.shape;
  out.raw_bytes = merged.raw_bytes;
  out.compressed_bytes = merged.compressed_bytes;
  out.ratio = merged.ratio();
  out.codec = merged.spec;
  out.lossless = merged.lossless;
  out.error = merged.error;
  out.compress_seconds = out.decompress_seconds = 0;
  for (const TensorReport& b : blocks) {
    out.compress_seconds += b.compress_seconds;
    out.decompress_seconds += b.decompress_seconds;
  }
  return out;
}

absl::StatusOr<CompressPlan> CompressPlan::Make(absl::Span<const io::NamedTensor> tensors,
                                                const ClientOptions& o) {
  CompressPlan plan;
  KV_ASSIGN_OR_RETURN(std::vector<Piece> pieces,
                      CutTensors(tensors, EffectiveThreshold(o), HardLimit(o)));
  plan.chunks_ = Pack(std::move(pieces), EffectiveThreshold(o));
  for (const io::NamedTensor& t : tensors) plan.metas_.push_back(t.tensor.meta);
  return plan;
}

v1::CompressRequest CompressPlan::Request(size_t i, absl::string_view spec,
                                          absl::Span<const io::NamedTensor> tensors) const {
  v1::CompressRequest req;
  req.set_codec(std::string(spec));
  if (i >= chunks_.size()) return req;
  for (const Piece& p : chunks_[i]) {
    if (p.count < 0) {
      ToProto(tensors[p.item], req.add_tensors());
    } else {
      TokenBlockToProto(tensors[p.item], p.offset, p.count, req.add_tensors());
    }
  }
  return req;
}

void CompressPlan::Reset() {
  tensors_.assign(metas_.size(), CompressedTensor{});
  reports_.assign(metas_.size(), {});
  totals_ = {};
}

absl::Status CompressPlan::Take(size_t i, v1::CompressResponse& resp) {
  const size_t expected = i < chunks_.size() ? chunks_[i].size() : 0;
  if (static_cast<size_t>(resp.tensors_size()) != expected) {
    return absl::DataLossError(
        absl::StrCat("Compress: server returned ", resp.tensors_size(), " tensors for ", expected));
  }
  for (size_t k = 0; k < expected; ++k) {
    const Piece& p = chunks_[i][k];
    v1::CompressedTensor& t = *resp.mutable_tensors(static_cast<int>(k));
    if (p.count >= 0 && t.token_offset() != static_cast<uint64_t>(p.offset)) {
      return absl::DataLossError(absl::StrCat("Compress: server placed a block of '", t.name(),
                                              "' at token ", t.token_offset(), ", not ", p.offset));
    }
    CompressedTensor& out = tensors_[p.item];
    if (reports_[p.item].empty()) out.name = t.name();
    out.frame.insert(out.frame.end(), t.frame().begin(), t.frame().end());
    KV_ASSIGN_OR_RETURN(TensorReport report, ReportFromProto(t.report()));
    reports_[p.item].push_back(std::move(report));
  }
  totals_.raw_bytes += resp.totals().raw_bytes();
  totals_.compressed_bytes += resp.totals().compressed_bytes();
  return absl::OkStatus();
}

CompressResult CompressPlan::Result() {
  CompressResult out;
  for (size_t i = 0; i < tensors_.size(); ++i) {
    tensors_[i].report = reports_[i].size() == 1 ? std::move(reports_[i][0])
                                                 : MergeBlockReports(reports_[i], metas_[i]);
  }
  out.tensors = std::move(tensors_);
  out.totals = totals_;
  out.totals.ratio = totals_.compressed_bytes
                         ? static_cast<double>(totals_.raw_bytes) / totals_.compressed_bytes
                         : 0;
  return out;
}

absl::StatusOr<DecompressPlan> DecompressPlan::Make(absl::Span<const FrameRef> refs,
                                                    const ClientOptions& o) {
  DecompressPlan plan;
  std::vector<Piece> pieces;
  const uint64_t hard = HardLimit(o);
  for (size_t i = 0; i < refs.size(); ++i) {
    auto frames = SplitFrames(refs[i].frame);
    // Unsplittable input goes as it is: the server names what is wrong with it.
    if (!frames.ok() || frames->empty()) {
      frames = std::vector<absl::Span<const uint8_t>>{refs[i].frame};
    }
    plan.frames_per_ref_.push_back(frames->size());
    for (size_t j = 0; j < frames->size(); ++j) {
      const absl::Span<const uint8_t> f = (*frames)[j];
      auto parsed = ParseFrame(f);
      const uint64_t raw = parsed.ok() ? parsed->header.meta.NumBytes() : 0;
      const uint64_t cost = std::max<uint64_t>(f.size(), raw) + kPerTensorOverhead;
      if (cost > hard) {
        return absl::ResourceExhaustedError(absl::StrCat(
            "Decompress: frame ", j, " of tensor ", i, " ('", refs[i].name, "') is ", f.size(),
            " bytes and decodes to ", raw, ", above the client's limit of ", hard,
            " bytes (max message size); compress in smaller token blocks "
            "(stream threshold)"));
      }
      pieces.push_back({i, 0, -1, cost, f});
    }
  }
  plan.chunks_ = Pack(std::move(pieces), EffectiveThreshold(o));
  for (const FrameRef& r : refs) plan.names_.push_back(r.name);
  return plan;
}

v1::DecompressRequest DecompressPlan::Request(size_t i) const {
  v1::DecompressRequest req;
  if (i >= chunks_.size()) return req;
  for (const Piece& p : chunks_[i]) {
    v1::CompressedTensor* t = req.add_tensors();
    t->set_name(names_[p.item]);
    t->set_frame(p.frame.data(), p.frame.size());
  }
  return req;
}

void DecompressPlan::Reset() {
  out_.clear();
  pending_.clear();
}

absl::Status DecompressPlan::Take(size_t i, v1::DecompressResponse& resp) {
  const size_t expected = i < chunks_.size() ? chunks_[i].size() : 0;
  if (static_cast<size_t>(resp.tensors_size()) != expected) {
    return absl::DataLossError(absl::StrCat("Decompress: server returned ", resp.tensors_size(),
                                            " tensors for ", expected, " frames"));
  }
  for (size_t k = 0; k < expected; ++k) {
    KV_ASSIGN_OR_RETURN(io::NamedTensor t, FromProto(resp.tensors(static_cast<int>(k))));
    resp.mutable_tensors(static_cast<int>(k))->clear_raw_contents();
    pending_.push_back(std::move(t));
    // A tensor is complete once its last frame is back; its blocks become one tensor.
    if (pending_.size() == frames_per_ref_[out_.size()]) {
      if (pending_.size() == 1) {
        out_.push_back(std::move(pending_[0]));
      } else {
        KV_ASSIGN_OR_RETURN(io::NamedTensor whole, ConcatTokenBlocks(std::move(pending_)));
        out_.push_back(std::move(whole));
      }
      pending_.clear();
    }
  }
  return absl::OkStatus();
}

}  // namespace kvcomp::client

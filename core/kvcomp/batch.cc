#include "core/kvcomp/batch.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <limits>
#include <memory>

#include "absl/strings/str_cat.h"
#include "core/kvcomp/frame.h"
#include "core/kvcomp/token_blocks.h"

namespace kvcomp {
namespace {

// A thread's working buffer, reused from item to item and call to call (so that a worker does
// not fault in fresh pages for every tensor), but kept between items only up to kKeptBytes, so
// that one huge tensor does not pin its size in every thread for good.
class Scratch {
 public:
  static constexpr size_t kKeptBytes = size_t{16} << 20;
  // This thread's buffer number `which` (0 or 1), at least `n` bytes, contents undefined.
  static uint8_t* Get(int which, size_t n) {
    Buffer& b = Buffers()[which];
    if (b.size < n) {
      b.bytes.reset(new uint8_t[n]);  // default-initialised: no zero fill
      b.size = n;
    }
    return b.bytes.get();
  }
  // Frees this thread's buffers if they grew past what is kept.
  static void Trim() {
    for (Buffer& b : Buffers()) {
      if (b.size > kKeptBytes) {
        b.bytes.reset();
        b.size = 0;
      }
    }
  }

 private:
  struct Buffer {
    std::unique_ptr<uint8_t[]> bytes;
    size_t size = 0;
  };
  static std::array<Buffer, 2>& Buffers() {
    thread_local std::array<Buffer, 2> buffers;
    return buffers;
  }
};

// Remembers the lowest failing index, so that items after it can be skipped while every item
// before it still runs: the error returned is the one a single thread would have met first.
class FirstFailure {
 public:
  bool Skip(size_t i) const { return i > first_.load(std::memory_order_relaxed); }
  void Failed(size_t i) {
    size_t seen = first_.load();
    while (i < seen && !first_.compare_exchange_weak(seen, i)) {
    }
  }

 private:
  std::atomic<size_t> first_{std::numeric_limits<size_t>::max()};
};

std::string Label(const BatchOptions& options, size_t i) {
  return options.label ? options.label(i) : absl::StrCat("tensor ", i);
}

absl::Status Prefixed(const absl::Status& s, absl::string_view prefix) {
  if (s.ok()) return s;
  return absl::Status(s.code(), absl::StrCat(prefix, ": ", s.message()));
}

absl::Status Check(const BatchOptions& options) {
  return options.check ? options.check() : absl::OkStatus();
}

bool SameMeta(const TensorMeta& a, const TensorMeta& b) {
  return SameTensorApartFromTokens(a, b) && a.shape == b.shape;
}

// One unit of work: a whole tensor, or tokens [offset, offset + count) of it.
struct Piece {
  size_t tensor = 0;
  uint64_t offset = 0;
  uint64_t count = 0;
  bool block = false;
};

std::vector<Piece> CutIntoBlocks(absl::Span<const TensorView> tensors, uint64_t block_tokens) {
  std::vector<Piece> pieces;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const uint64_t tokens = tensors[i].geometry().rows;
    if (block_tokens == 0 || tokens <= block_tokens || tensors[i].meta().shape.empty()) {
      pieces.push_back({i, 0, tokens, false});
      continue;
    }
    for (uint64_t offset = 0; offset < tokens; offset += block_tokens) {
      pieces.push_back({i, offset, std::min(block_tokens, tokens - offset), true});
    }
  }
  return pieces;
}

// The bytes the codec reads for `piece`: the tensor itself, a subspan of it, or a copy in the
// thread's scratch (a block that is not contiguous, or input another process may write).
absl::StatusOr<TensorView> PieceView(const TensorView& whole, const Piece& piece, bool shared) {
  if (!piece.block) {
    if (!shared) return whole;
    const auto bytes = whole.bytes();
    uint8_t* copy = Scratch::Get(0, bytes.size());
    if (!bytes.empty()) std::memcpy(copy, bytes.data(), bytes.size());
    return TensorView::Make(whole.meta(), absl::MakeConstSpan(copy, bytes.size()));
  }
  const TensorMeta meta = TokenBlockMeta(whole.meta(), piece.count);
  const uint64_t token_bytes = TokenBytes(whole.meta());
  if (TokensContiguous(whole.meta()) && !shared) {
    return TensorView::Make(
        meta, whole.bytes().subspan(piece.offset * token_bytes, piece.count * token_bytes));
  }
  uint8_t* copy = Scratch::Get(0, meta.NumBytes());
  GatherTokens(whole.meta(), whole.bytes().data(), piece.offset, piece.count, copy);
  return TensorView::Make(meta, absl::MakeConstSpan(copy, meta.NumBytes()));
}

}  // namespace

absl::StatusOr<std::vector<CompressedTensor>> CompressTensors(const Codec& codec,
                                                              absl::Span<const TensorView> tensors,
                                                              const BatchOptions& options,
                                                              std::vector<double>* seconds) {
  const std::vector<Piece> pieces = CutIntoBlocks(tensors, options.block_tokens);
  std::vector<absl::StatusOr<CompressedTensor>> done(pieces.size(),
                                                     absl::CancelledError("not run"));
  std::vector<double> piece_seconds(pieces.size(), 0.0);
  FirstFailure failure;
  ParallelFor(pieces.size(), options.parallelism, [&](size_t k) {
    if (failure.Skip(k)) return;
    const Piece& piece = pieces[k];
    absl::Status status = Check(options);
    if (status.ok()) {
      absl::StatusOr<TensorView> view =
          PieceView(tensors[piece.tensor], piece, options.shared_input);
      if (view.ok()) {
        const auto start = std::chrono::steady_clock::now();
        done[k] = codec.Compress(*view);
        piece_seconds[k] =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        status = done[k].status();
      } else {
        status = view.status();
      }
      if (!status.ok()) {
        std::string where = Label(options, piece.tensor);
        if (piece.block) {
          absl::StrAppend(&where, " tokens ", piece.offset, "..", piece.offset + piece.count);
        }
        status = Prefixed(status, where);
      }
    }
    Scratch::Trim();
    if (!status.ok()) {
      done[k] = status;
      failure.Failed(k);
    }
  });
  for (auto& d : done) {
    if (!d.ok()) return d.status();
  }

  std::vector<CompressedTensor> out(tensors.size());
  if (seconds != nullptr) seconds->assign(tensors.size(), 0.0);
  std::vector<TensorReport> reports;
  for (size_t k = 0; k < pieces.size();) {
    const size_t t = pieces[k].tensor;
    size_t end = k;
    while (end < pieces.size() && pieces[end].tensor == t) ++end;
    if (seconds != nullptr) {
      for (size_t j = k; j < end; ++j) (*seconds)[t] += piece_seconds[j];
    }
    if (!pieces[k].block) {
      out[t] = *std::move(done[k]);
    } else {
      reports.clear();
      size_t bytes = 0;
      for (size_t j = k; j < end; ++j) bytes += done[j]->frame.size();
      out[t].frame.reserve(bytes);
      for (size_t j = k; j < end; ++j) {
        out[t].frame.insert(out[t].frame.end(), done[j]->frame.begin(), done[j]->frame.end());
        done[j]->frame = {};
        reports.push_back(std::move(done[j]->report));
      }
      out[t].report = MergeBlockReports(reports, tensors[t].meta());
    }
    k = end;
  }
  return out;
}

namespace {

// One frame of an item: where it is, what its header says, and where its tokens go.
struct FramePart {
  size_t item = 0;
  size_t block = 0;  // its index among the item's frames
  uint64_t token_offset = 0;
  absl::Span<const uint8_t> bytes;
  TensorMeta meta;
  absl::Status status;
};

// The frames of one item, found by their length fields alone.
absl::Status SplitItem(size_t item, absl::Span<const uint8_t> data, std::vector<FramePart>* out) {
  size_t pos = 0, count = 0;
  do {
    absl::StatusOr<uint64_t> n = PeekFrameLength(data.subspan(pos));
    if (!n.ok()) {
      // The first frame's error reads as ParseFrame's of a lone frame: the usual case.
      return count == 0 ? n.status()
                        : Prefixed(n.status(), absl::StrCat("frame ", count, " at byte ", pos));
    }
    FramePart part;
    part.item = item;
    part.block = count++;
    part.bytes = data.subspan(pos, *n);
    out->push_back(std::move(part));
    pos += *n;
  } while (pos < data.size());
  return absl::OkStatus();
}

std::string PartLabel(const BatchOptions& options, const FramePart& part, size_t frames) {
  std::string label = Label(options, part.item);
  if (frames > 1) absl::StrAppend(&label, " frame ", part.block);
  return label;
}

// Checks the item's frames (parts[first, end)) against each other and the limit: the whole
// tensor's meta, with each part's token offset set.
absl::StatusOr<TensorMeta> WholeOf(std::vector<FramePart>& parts, size_t first, size_t end,
                                   const BatchOptions& options) {
  TensorMeta whole = parts[first].meta;
  const size_t axis = TokenAxis(whole);
  uint64_t tokens = 0;
  for (size_t j = first; j < end; ++j) {
    const TensorMeta& m = parts[j].meta;
    if (!SameTensorApartFromTokens(whole, m) || m.shape.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(PartLabel(options, parts[j], end - first), " is ", DTypeName(m.dtype), " ",
                       m.ShapeString(), ", not a token block of the tensor of frame 0 (",
                       DTypeName(whole.dtype), " ", whole.ShapeString(), ")"));
    }
    parts[j].token_offset = tokens;
    tokens += static_cast<uint64_t>(m.shape[axis]);
  }
  if (end - first > 1) {
    whole.shape[axis] = static_cast<int64_t>(tokens);
    if (absl::Status s = whole.Validate(); !s.ok())
      return Prefixed(s, Label(options, parts[first].item));
  }
  const uint64_t frame_limit = std::min(options.limits.max_decoded_bytes, options.max_tensor_bytes);
  for (size_t j = first; j < end; ++j) {
    const TensorMeta& m = parts[j].meta;
    if (m.NumBytes() > frame_limit) {
      return absl::ResourceExhaustedError(absl::StrCat(
          PartLabel(options, parts[j], end - first), ": frame decodes to ", m.NumBytes(),
          " bytes (shape ", m.ShapeString(), "), over the limit of ", frame_limit));
    }
  }
  if (whole.NumBytes() > options.max_tensor_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        Label(options, parts[first].item), ": its frames decode to ", whole.NumBytes(),
        " bytes (shape ", whole.ShapeString(), "), over the limit of ", options.max_tensor_bytes));
  }
  return whole;
}

// Decodes one frame into `dest` (the whole tensor's bytes): straight into place when it can,
// else through the thread's scratch.
absl::Status DecodePart(const FramePart& part, size_t frames, const TensorMeta& whole,
                        absl::Span<uint8_t> dest, const BatchOptions& options) {
  absl::Span<const uint8_t> frame = part.bytes;
  if (options.shared_input) {
    uint8_t* copy = Scratch::Get(0, frame.size());
    std::memcpy(copy, frame.data(), frame.size());
    frame = absl::MakeConstSpan(copy, frame.size());
  }
  const uint64_t token_bytes = TokenBytes(whole);
  const uint64_t bytes = part.meta.NumBytes();
  const bool direct = !options.shared_output && (frames == 1 || TokensContiguous(whole));
  uint8_t* target = direct ? dest.data() + part.token_offset * token_bytes
                           : Scratch::Get(1, std::max<uint64_t>(bytes, 1));
  bool changed = false;
  absl::StatusOr<TensorMeta> got = DecompressInto(
      frame,
      [&](const TensorMeta& m) {
        // The header was read once already; input that another process rewrote since may
        // now say something else, and must not be decoded into room made for the first.
        changed = !SameMeta(m, part.meta);
        return changed ? absl::Span<uint8_t>() : absl::MakeSpan(target, bytes);
      },
      options.limits);
  if (changed) return absl::DataLossError("the frame changed while it was being read");
  if (!got.ok()) return got.status();
  if (direct) return absl::OkStatus();
  if (frames == 1 || TokensContiguous(whole)) {
    if (bytes > 0) std::memcpy(dest.data() + part.token_offset * token_bytes, target, bytes);
  } else {
    ScatterTokens(whole, dest.data(), part.token_offset,
                  static_cast<uint64_t>(part.meta.shape[TokenAxis(whole)]), target);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<TensorMeta>> DecompressTensors(
    absl::Span<const absl::Span<const uint8_t>> items, TensorDestination into,
    const BatchOptions& options) {
  std::vector<FramePart> parts;
  std::vector<size_t> first(items.size() + 1, 0);  // item i's parts: [first[i], first[i + 1])
  std::vector<absl::Status> split(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    first[i] = parts.size();
    split[i] = SplitItem(i, items[i], &parts);
  }
  first[items.size()] = parts.size();

  // Every header, checksum included, before anything is decoded or any room is asked for.
  ParallelFor(parts.size(), options.parallelism, [&](size_t k) {
    absl::StatusOr<ParsedFrame> parsed = ParseFrame(parts[k].bytes);
    if (parsed.ok()) {
      parts[k].meta = std::move(parsed->header.meta);
    } else {
      parts[k].status = parsed.status();
    }
  });

  std::vector<TensorMeta> metas(items.size());
  std::vector<absl::Span<uint8_t>> dests(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    const size_t frames = first[i + 1] - first[i];
    for (size_t k = first[i]; k < first[i + 1]; ++k) {
      if (!parts[k].status.ok()) {
        return Prefixed(parts[k].status, PartLabel(options, parts[k], frames));
      }
    }
    if (!split[i].ok()) return Prefixed(split[i], Label(options, i));
    absl::StatusOr<TensorMeta> whole = WholeOf(parts, first[i], first[i + 1], options);
    if (!whole.ok()) return whole.status();
    absl::StatusOr<absl::Span<uint8_t>> dest = into(i, *whole);
    if (!dest.ok()) return dest.status();
    if (dest->size() != whole->NumBytes()) {
      return absl::InvalidArgumentError(absl::StrCat(Label(options, i), ": room for ", dest->size(),
                                                     " bytes; it decodes to ", whole->NumBytes()));
    }
    metas[i] = *std::move(whole);
    dests[i] = *dest;
  }

  FirstFailure failure;
  ParallelFor(parts.size(), options.parallelism, [&](size_t k) {
    if (failure.Skip(k)) return;
    FramePart& part = parts[k];
    const size_t frames = first[part.item + 1] - first[part.item];
    absl::Status status = Check(options);
    if (status.ok()) {
      status = Prefixed(DecodePart(part, frames, metas[part.item], dests[part.item], options),
                        PartLabel(options, part, frames));
    }
    Scratch::Trim();
    if (!status.ok()) {
      part.status = status;
      failure.Failed(k);
    }
  });
  for (const FramePart& part : parts) {
    if (!part.status.ok()) return part.status;
  }
  return metas;
}

}  // namespace kvcomp

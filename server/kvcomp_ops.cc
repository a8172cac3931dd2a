#include "server/kvcomp_ops.h"

#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "core/kvcomp/analysis/analyzer.h"
#include "core/kvcomp/batch.h"
#include "core/kvcomp/catalogue.h"
#include "core/kvcomp/codec.h"
#include "core/kvcomp/internal/quote.h"
#include "core/kvcomp/internal/status_macros.h"
#include "core/kvcomp/spec.h"
#include "proto/kvcomp/v1/convert.h"
#include "server/analysis_convert.h"
#include "server/shm_call.h"
#include "server/status_convert.h"

namespace kvcomp::server {
namespace {

absl::Status CheckCancelled(const OpsOptions& options) {
  if (options.cancelled && options.cancelled()) {
    if (options.past_deadline && options.past_deadline()) {
      return absl::DeadlineExceededError("call past its deadline");
    }
    return absl::CancelledError("call cancelled by the client");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Codec>> ResolveCodec(absl::string_view spec) {
  if (spec.empty()) return absl::InvalidArgumentError("codec: empty spec (e.g. \"zstd(3)\")");
  absl::StatusOr<std::unique_ptr<Codec>> codec = MakeCodec(spec);
  if (!codec.ok()) return Annotate(codec.status(), absl::StrCat("codec ", Quote(spec)));
  return codec;
}

// `value`, or its error prefixed with `label`.
template <typename T>
absl::StatusOr<T> Labelled(absl::StatusOr<T> value, absl::string_view label) {
  if (!value.ok()) return Annotate(value.status(), label);
  return value;
}

// The view of tensor `i`: over its raw_contents, or over the shared-memory range it names
// (read through `regions`; null where shared memory is not served, as in Analyze).
absl::StatusOr<TensorView> ViewOf(const v1::Tensor& tensor, const std::string& label,
                                  CallRegions* regions) {
  if (!tensor.has_shm()) return Labelled(proto::ViewFromProto(tensor), label);
  if (regions == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(label,
                     ": Analyze takes tensor bytes in raw_contents; shared-memory "
                     "tensors are served by Compress and Decompress"));
  }
  if (!tensor.raw_contents().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(label, ": has both raw_contents and shm; send the bytes one way"));
  }
  absl::StatusOr<TensorMeta> meta = proto::MetaFromProto(tensor);
  if (!meta.ok()) return Annotate(meta.status(), label);
  absl::StatusOr<absl::Span<const uint8_t>> bytes = regions->Input(tensor.shm(), label);
  if (!bytes.ok()) return bytes.status();
  return Labelled(TensorView::Make(*std::move(meta), *bytes), label);
}

// Views over every request tensor, validated up front so a bad tensor fails the call before
// any work is done.
absl::StatusOr<std::vector<TensorView>> ViewsOf(
    const google::protobuf::RepeatedPtrField<v1::Tensor>& tensors, const OpsOptions& options,
    CallRegions* regions) {
  std::vector<TensorView> views;
  views.reserve(tensors.size());
  for (int i = 0; i < tensors.size(); ++i) {
    const std::string label = TensorLabel(i, tensors[i].name());
    absl::StatusOr<TensorView> view = ViewOf(tensors[i], label, regions);
    if (!view.ok()) return view.status();
    const uint64_t elements = view->meta().NumElements();
    if (options.max_tensor_elements > 0 && elements > options.max_tensor_elements) {
      return absl::ResourceExhaustedError(
          absl::StrCat(label, ": ", elements, " elements, more than the server's limit of ",
                       options.max_tensor_elements, " (--max-tensor-elements)"));
    }
    views.push_back(*std::move(view));
  }
  return views;
}

void SetTotals(uint64_t raw, uint64_t compressed, v1::Totals* totals) {
  totals->set_raw_bytes(raw);
  totals->set_compressed_bytes(compressed);
  totals->set_ratio(compressed ? static_cast<double>(raw) / static_cast<double>(compressed) : 0.0);
}

// The most token blocks one call may be cut into: each is a frame, a report and a task.
constexpr uint64_t kMaxBlocksPerCall = uint64_t{1} << 16;

absl::Status CheckBlocks(const std::vector<TensorView>& views, uint64_t block_tokens) {
  if (block_tokens == 0) return absl::OkStatus();
  uint64_t blocks = 0;
  for (const TensorView& v : views) blocks += (v.geometry().rows + block_tokens - 1) / block_tokens;
  if (blocks > kMaxBlocksPerCall) {
    return absl::InvalidArgumentError(
        absl::StrCat("block_tokens ", block_tokens, " cuts the request's tensors into ", blocks,
                     " blocks, more than the ", kMaxBlocksPerCall, " one call may have"));
  }
  return absl::OkStatus();
}

// The batch settings of a call: its threads, its cancellation and how its tensors are named.
template <typename Entry>
BatchOptions BatchFor(const google::protobuf::RepeatedPtrField<Entry>& entries,
                      const OpsOptions& options) {
  BatchOptions batch;
  batch.parallelism = options.parallelism;
  batch.check = [&options] { return CheckCancelled(options); };
  batch.label = [&entries](size_t i) {
    return TensorLabel(static_cast<int>(i), entries[static_cast<int>(i)].name());
  };
  return batch;
}

absl::Span<const uint8_t> BytesOf(const std::string& s) {
  return absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

}  // namespace

std::string CodecFamily(absl::string_view spec) {
  absl::StatusOr<SpecPipeline> parsed = ParseSpec(spec);
  if (!parsed.ok() || parsed->empty()) return "invalid";
  return parsed->front().name;
}

absl::Status RunCompressFrames(const v1::CompressRequest& request, v1::CompressResponse* response,
                               std::vector<Payload>* frames, const OpsOptions& options) {
  absl::StatusOr<std::unique_ptr<Codec>> codec = ResolveCodec(request.codec());
  if (!codec.ok()) return codec.status();
  CallRegions regions(options.shm);
  absl::StatusOr<std::vector<TensorView>> views = ViewsOf(request.tensors(), options, &regions);
  if (!views.ok()) return views.status();
  KV_RETURN_IF_ERROR(CheckBlocks(*views, request.block_tokens()));
  std::optional<OutputWindow> window;
  if (request.has_output()) {
    absl::StatusOr<OutputWindow> w = regions.Output(request.output());
    if (!w.ok()) return w.status();
    window = *std::move(w);
  }
  const std::string family = CodecFamily(request.codec());

  BatchOptions batch = BatchFor(request.tensors(), options);
  batch.block_tokens = request.block_tokens();
  batch.shared_input = regions.has_inputs();
  std::vector<double> seconds;
  absl::StatusOr<std::vector<CompressedTensor>> out =
      CompressTensors(**codec, *views, batch, &seconds);
  if (!out.ok()) return out.status();

  uint64_t raw_total = 0, compressed_total = 0;
  std::vector<absl::Span<uint8_t>> placed;
  for (int i = 0; i < request.tensors_size(); ++i) {
    const v1::Tensor& in = request.tensors(i);
    CompressedTensor& done = (*out)[static_cast<size_t>(i)];
    v1::CompressedTensor* entry = response->add_tensors();
    entry->set_name(in.name());
    proto::ReportToProto(done.report, in.name(), entry->mutable_report());
    entry->mutable_report()->set_compress_seconds(seconds[static_cast<size_t>(i)]);
    entry->set_token_offset(in.token_offset());
    entry->set_total_tokens(in.total_tokens());
    raw_total += done.report.raw_bytes;
    compressed_total += done.report.compressed_bytes;
    if (options.observer != nullptr) {
      options.observer->OnCompressed(family, done.report, seconds[static_cast<size_t>(i)]);
    }
    if (window.has_value()) {
      absl::StatusOr<absl::Span<uint8_t>> room =
          window->Place(done.frame.size(), absl::StrCat(TensorLabel(i, in.name()), "'s frame"),
                        entry->mutable_shm());
      if (!room.ok()) return room.status();
      placed.push_back(*room);
    }
    frames->emplace_back(std::move(done.frame));
  }
  if (window.has_value()) {
    // Written out on every thread too (a 64 MiB cache has ~50 MiB of frames), and not sent.
    ParallelFor(placed.size(), options.parallelism, [&](size_t i) {
      if (!placed[i].empty())
        std::memcpy(placed[i].data(), (*frames)[i].bytes().data(), placed[i].size());
      (*frames)[i] = {};
    });
  }
  SetTotals(raw_total, compressed_total, response->mutable_totals());
  return absl::OkStatus();
}

absl::Status RunCompress(const v1::CompressRequest& request, v1::CompressResponse* response,
                         const OpsOptions& options) {
  std::vector<Payload> frames;
  KV_RETURN_IF_ERROR(RunCompressFrames(request, response, &frames, options));
  for (size_t i = 0; i < frames.size(); ++i) {
    response->mutable_tensors(static_cast<int>(i))
        ->set_frame(frames[i].bytes().data(), frames[i].size());
  }
  return absl::OkStatus();
}

absl::Status RunDecompressPayloads(const v1::DecompressRequest& request,
                                   v1::DecompressResponse* response, std::vector<Payload>* payloads,
                                   const OpsOptions& options) {
  CallRegions regions(options.shm);
  std::vector<absl::Span<const uint8_t>> items;
  items.reserve(static_cast<size_t>(request.tensors_size()));
  for (int i = 0; i < request.tensors_size(); ++i) {
    const v1::CompressedTensor& in = request.tensors(i);
    if (!in.has_shm()) {
      items.push_back(BytesOf(in.frame()));
      continue;
    }
    if (!in.frame().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          TensorLabel(i, in.name()), ": has both frame and shm; send the frame one way"));
    }
    absl::StatusOr<absl::Span<const uint8_t>> frame =
        regions.Input(in.shm(), TensorLabel(i, in.name()));
    if (!frame.ok()) return frame.status();
    items.push_back(*frame);
  }
  std::optional<OutputWindow> window;
  if (request.has_output()) {
    absl::StatusOr<OutputWindow> w = regions.Output(request.output());
    if (!w.ok()) return w.status();
    window = *std::move(w);
  }
  // The limit bounds what the reply holds for the whole request (a unary call or one stream
  // chunk), not each frame: many small frames that each decode to the limit would otherwise
  // multiply it. Each tensor counts what it adds to the reply, its metadata too, so that frames
  // of empty tensors (44 bytes each, decoding to nothing) are bounded like any others; a tensor
  // written into an output window adds its metadata only, and is bounded by the window (and,
  // frame by frame, by the limit). Every header is read before anything is decoded, so a call
  // over the limit is refused before any work.
  const uint64_t limit = options.decode_limits.max_decoded_bytes;
  uint64_t decoded = 0;
  // Called in order, once every frame up to tensor i has parsed: its reply entry, and room to
  // decode it into (the window or a payload), with no tensor-sized copy.
  auto into = [&](size_t index, const TensorMeta& meta) -> absl::StatusOr<absl::Span<uint8_t>> {
    const int i = static_cast<int>(index);
    const v1::CompressedTensor& in = request.tensors(i);
    const uint64_t sent = window.has_value() ? 0 : meta.NumBytes();
    if (sent > limit - decoded) {
      return absl::ResourceExhaustedError(absl::StrCat(
          TensorLabel(i, in.name()), ": frame decodes to ", meta.NumBytes(), " bytes (shape ",
          meta.ShapeString(), "), over the limit of ", limit - decoded,
          " (the request's earlier tensors decode to ", decoded, " of its ", limit, " bytes)"));
    }
    v1::Tensor* out = response->add_tensors();
    proto::MetaToProto(meta, in.name(), out);
    out->set_token_offset(in.token_offset());
    out->set_total_tokens(in.total_tokens());
    absl::Span<uint8_t> room;
    if (window.has_value()) {
      absl::StatusOr<absl::Span<uint8_t>> placed =
          window->Place(meta.NumBytes(), TensorLabel(i, in.name()), out->mutable_shm());
      if (!placed.ok()) return placed.status();
      room = *placed;
      payloads->emplace_back();  // nothing sent for it
    } else {
      room = payloads->emplace_back(Payload::ForOverwrite(meta.NumBytes())).bytes();
    }
    // The entry's bytes in the reply: its metadata, and the tensor's bytes if they go in it.
    decoded += out->ByteSizeLong() + sent;
    if (decoded > limit) {
      return absl::ResourceExhaustedError(
          absl::StrCat(TensorLabel(i, in.name()), ": the request's tensors decode to more than ",
                       limit, " bytes with their metadata (--max-decompressed-bytes), after ",
                       i + 1, " of ", request.tensors_size()));
    }
    return room;
  };
  BatchOptions batch = BatchFor(request.tensors(), options);
  batch.limits = options.decode_limits;
  batch.max_tensor_bytes = window.has_value() ? UINT64_MAX : limit;
  batch.shared_input = regions.has_inputs();
  batch.shared_output = window.has_value();
  return DecompressTensors(items, into, batch).status();
}

absl::Status RunDecompress(const v1::DecompressRequest& request, v1::DecompressResponse* response,
                           const OpsOptions& options) {
  std::vector<Payload> payloads;
  KV_RETURN_IF_ERROR(RunDecompressPayloads(request, response, &payloads, options));
  for (size_t i = 0; i < payloads.size(); ++i) {
    const absl::Span<uint8_t> bytes = payloads[i].bytes();
    response->mutable_tensors(static_cast<int>(i))
        ->set_raw_contents(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  }
  return absl::OkStatus();
}

absl::Status RunAnalyze(const v1::AnalyzeRequest& request, v1::AnalyzeResponse* response,
                        const OpsOptions& options) {
  // Explicit specs are checked here too, so the error names the spec as Compress does.
  for (const std::string& spec : request.codecs()) {
    absl::StatusOr<std::unique_ptr<Codec>> codec = ResolveCodec(spec);
    if (!codec.ok()) return codec.status();
  }
  absl::StatusOr<std::vector<TensorView>> views =
      ViewsOf(request.tensors(), options, /*regions=*/nullptr);
  if (!views.ok()) return views.status();

  AnalysisOptions analysis = AnalysisOptionsFromProto(request);
  analysis.cancelled = options.cancelled;
  absl::StatusOr<AnalysisReport> report = AnalyzeCache(*views, analysis);
  if (!report.ok()) return Annotate(report.status(), "analyze");
  AnalysisToProto(*report, request.tensors(), response);
  return absl::OkStatus();
}

absl::Status RunListCodecs(const v1::ListCodecsRequest&, v1::ListCodecsResponse* response,
                           const OpsOptions&) {
  for (const CatalogueEntry& e : CodecCatalogue()) {
    proto::CatalogueEntryToProto(e, response->add_codecs());
  }
  return absl::OkStatus();
}

}  // namespace kvcomp::server

#include "server/kvcomp_ops.h"

#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "kvcomp/analysis/analyzer.h"
#include "kvcomp/batch.h"
#include "kvcomp/codec.h"
#include "kvcomp/quote.h"
#include "kvcomp/spec.h"
#include "kvcomp/status_macros.h"
#include "server/analysis_convert.h"
#include "server/tensor_convert.h"

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

// Views over every request tensor, validated up front so a bad tensor fails the call before
// any work is done.
absl::StatusOr<std::vector<TensorView>> ViewsOf(
    const google::protobuf::RepeatedPtrField<v1::Tensor>& tensors, const OpsOptions& options) {
  std::vector<TensorView> views;
  views.reserve(tensors.size());
  for (int i = 0; i < tensors.size(); ++i) {
    absl::StatusOr<TensorView> view = ViewFromProto(tensors[i]);
    if (!view.ok()) return Annotate(view.status(), TensorLabel(i, tensors[i].name()));
    const uint64_t elements = view->meta().NumElements();
    if (options.max_tensor_elements > 0 && elements > options.max_tensor_elements) {
      return absl::ResourceExhaustedError(
          absl::StrCat(TensorLabel(i, tensors[i].name()), ": ", elements,
                       " elements, more than the server's limit of ", options.max_tensor_elements,
                       " (--max-tensor-elements)"));
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
                               std::vector<std::vector<uint8_t>>* frames,
                               const OpsOptions& options) {
  absl::StatusOr<std::unique_ptr<Codec>> codec = ResolveCodec(request.codec());
  if (!codec.ok()) return codec.status();
  absl::StatusOr<std::vector<TensorView>> views = ViewsOf(request.tensors(), options);
  if (!views.ok()) return views.status();
  KV_RETURN_IF_ERROR(CheckBlocks(*views, request.block_tokens()));
  const std::string family = CodecFamily(request.codec());

  BatchOptions batch = BatchFor(request.tensors(), options);
  batch.block_tokens = request.block_tokens();
  std::vector<double> seconds;
  absl::StatusOr<std::vector<CompressedTensor>> out =
      CompressTensors(**codec, *views, batch, &seconds);
  if (!out.ok()) return out.status();

  uint64_t raw_total = 0, compressed_total = 0;
  for (int i = 0; i < request.tensors_size(); ++i) {
    const v1::Tensor& in = request.tensors(i);
    CompressedTensor& done = (*out)[static_cast<size_t>(i)];
    v1::CompressedTensor* entry = response->add_tensors();
    entry->set_name(in.name());
    ReportToProto(done.report, in.name(), entry->mutable_report());
    entry->mutable_report()->set_compress_seconds(seconds[static_cast<size_t>(i)]);
    entry->set_token_offset(in.token_offset());
    entry->set_total_tokens(in.total_tokens());
    raw_total += done.report.raw_bytes;
    compressed_total += done.report.compressed_bytes;
    if (options.observer != nullptr) {
      options.observer->OnCompressed(family, done.report, seconds[static_cast<size_t>(i)]);
    }
    frames->push_back(std::move(done.frame));
  }
  SetTotals(raw_total, compressed_total, response->mutable_totals());
  return absl::OkStatus();
}

absl::Status RunCompress(const v1::CompressRequest& request, v1::CompressResponse* response,
                         const OpsOptions& options) {
  std::vector<std::vector<uint8_t>> frames;
  KV_RETURN_IF_ERROR(RunCompressFrames(request, response, &frames, options));
  for (size_t i = 0; i < frames.size(); ++i) {
    response->mutable_tensors(static_cast<int>(i))->set_frame(frames[i].data(), frames[i].size());
  }
  return absl::OkStatus();
}

absl::Status RunDecompressPayloads(const v1::DecompressRequest& request,
                                   v1::DecompressResponse* response,
                                   std::vector<std::vector<uint8_t>>* payloads,
                                   const OpsOptions& options) {
  std::vector<absl::Span<const uint8_t>> items;
  items.reserve(static_cast<size_t>(request.tensors_size()));
  for (const v1::CompressedTensor& in : request.tensors()) items.push_back(BytesOf(in.frame()));
  // The limit bounds what the reply holds for the whole request (a unary call or one stream
  // chunk), not each frame: many small frames that each decode to the limit would otherwise
  // multiply it. Each tensor counts what it adds to the reply, its metadata too, so that frames
  // of empty tensors (44 bytes each, decoding to nothing) are bounded like any others. Every
  // header is read before anything is decoded, so a call over the limit is refused before any
  // work.
  const uint64_t limit = options.decode_limits.max_decoded_bytes;
  uint64_t decoded = 0;
  // Called in order, once every frame up to tensor i has parsed: its reply entry, and room to
  // decode it into (the reply's bytes or a payload), with no tensor-sized copy.
  auto into = [&](size_t index, const TensorMeta& meta) -> absl::StatusOr<absl::Span<uint8_t>> {
    const int i = static_cast<int>(index);
    const v1::CompressedTensor& in = request.tensors(i);
    if (meta.NumBytes() > limit - decoded) {
      return absl::ResourceExhaustedError(absl::StrCat(
          TensorLabel(i, in.name()), ": frame decodes to ", meta.NumBytes(), " bytes (shape ",
          meta.ShapeString(), "), over the limit of ", limit - decoded,
          " (the request's earlier tensors decode to ", decoded, " of its ", limit, " bytes)"));
    }
    v1::Tensor* out = response->add_tensors();
    MetaToProto(meta, in.name(), out);
    out->set_token_offset(in.token_offset());
    out->set_total_tokens(in.total_tokens());
    absl::Span<uint8_t> room;
    if (payloads != nullptr) {
      room = absl::MakeSpan(payloads->emplace_back(meta.NumBytes()));
    } else {
      std::string* bytes = out->mutable_raw_contents();
      bytes->resize(meta.NumBytes());
      room = absl::MakeSpan(reinterpret_cast<uint8_t*>(bytes->data()), bytes->size());
    }
    // The entry's bytes in the reply: its metadata, and the tensor's bytes wherever they are.
    decoded += out->ByteSizeLong() + (payloads != nullptr ? meta.NumBytes() : 0);
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
  batch.max_tensor_bytes = limit;
  return DecompressTensors(items, into, batch).status();
}

absl::Status RunDecompress(const v1::DecompressRequest& request, v1::DecompressResponse* response,
                           const OpsOptions& options) {
  return RunDecompressPayloads(request, response, nullptr, options);
}

absl::Status RunAnalyze(const v1::AnalyzeRequest& request, v1::AnalyzeResponse* response,
                        const OpsOptions& options) {
  // Explicit specs are checked here too, so the error names the spec as Compress does.
  for (const std::string& spec : request.codecs()) {
    absl::StatusOr<std::unique_ptr<Codec>> codec = ResolveCodec(spec);
    if (!codec.ok()) return codec.status();
  }
  absl::StatusOr<std::vector<TensorView>> views = ViewsOf(request.tensors(), options);
  if (!views.ok()) return views.status();

  AnalysisOptions analysis = AnalysisOptionsFromProto(request);
  analysis.cancelled = options.cancelled;
  absl::StatusOr<AnalysisReport> report = AnalyzeCache(*views, analysis);
  if (!report.ok()) return Annotate(report.status(), "analyze");
  AnalysisToProto(*report, request.tensors(), response);
  return absl::OkStatus();
}

}  // namespace kvcomp::server

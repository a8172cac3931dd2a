#include "server/kvcomp_ops.h"

#include <chrono>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "kvcomp/analysis/analyzer.h"
#include "kvcomp/catalogue.h"
#include "kvcomp/codec.h"
#include "kvcomp/quote.h"
#include "kvcomp/spec.h"
#include "kvcomp/status_macros.h"
#include "kvcomp/v1/convert.h"
#include "server/analysis_convert.h"
#include "server/status_convert.h"

namespace kvcomp::server {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

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
    absl::StatusOr<TensorView> view = proto::ViewFromProto(tensors[i]);
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
  const std::string family = CodecFamily(request.codec());

  uint64_t raw_total = 0, compressed_total = 0;
  for (int i = 0; i < request.tensors_size(); ++i) {
    if (absl::Status s = CheckCancelled(options); !s.ok()) return s;
    const std::string& name = request.tensors(i).name();
    const TensorView& view = (*views)[i];
    const Clock::time_point start = Clock::now();
    absl::StatusOr<CompressedTensor> out = (*codec)->Compress(view);
    const double seconds = SecondsSince(start);
    if (!out.ok()) return Annotate(out.status(), TensorLabel(i, name));

    v1::CompressedTensor* entry = response->add_tensors();
    entry->set_name(name);
    proto::ReportToProto(out->report, name, entry->mutable_report());
    entry->mutable_report()->set_compress_seconds(seconds);
    entry->set_token_offset(request.tensors(i).token_offset());
    entry->set_total_tokens(request.tensors(i).total_tokens());
    raw_total += out->report.raw_bytes;
    compressed_total += out->report.compressed_bytes;
    if (options.observer != nullptr) {
      options.observer->OnCompressed(family, out->report, seconds);
    }
    frames->push_back(std::move(out->frame));
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
  // The limit bounds the whole request (a unary call or one stream chunk), not each frame: many
  // small frames that each decode to the limit would otherwise multiply it. Each tensor counts
  // what it adds to the reply, its metadata too, so that frames of empty tensors (44 bytes
  // each, decoding to nothing) are bounded like any others.
  const uint64_t limit = options.decode_limits.max_decoded_bytes;
  uint64_t decoded = 0;
  for (int i = 0; i < request.tensors_size(); ++i) {
    if (absl::Status s = CheckCancelled(options); !s.ok()) return s;
    const v1::CompressedTensor& in = request.tensors(i);
    v1::Tensor* out = response->add_tensors();
    // Decoded straight into the reply's bytes (or the payload): no tensor-sized copy per call.
    absl::StatusOr<TensorMeta> meta = DecompressInto(
        BytesOf(in.frame()),
        [out, payloads](const TensorMeta& m) {
          if (payloads != nullptr) {
            payloads->emplace_back(m.NumBytes());
            return absl::MakeSpan(payloads->back());
          }
          std::string* bytes = out->mutable_raw_contents();
          bytes->resize(m.NumBytes());
          return absl::MakeSpan(reinterpret_cast<uint8_t*>(bytes->data()), bytes->size());
        },
        {limit - decoded});
    if (!meta.ok()) {
      if (decoded > 0 && absl::IsResourceExhausted(meta.status())) {
        return Annotate(meta.status(),
                        absl::StrCat(TensorLabel(i, in.name()), " (the request's earlier tensors ",
                                     "decode to ", decoded, " of its ", limit, " bytes)"));
      }
      return Annotate(meta.status(), TensorLabel(i, in.name()));
    }
    proto::MetaToProto(*meta, in.name(), out);
    out->set_token_offset(in.token_offset());
    out->set_total_tokens(in.total_tokens());
    // The entry's bytes in the reply: its metadata, and the tensor's bytes wherever they are.
    decoded += out->ByteSizeLong() + (payloads != nullptr ? meta->NumBytes() : 0);
    if (decoded > limit) {
      return absl::ResourceExhaustedError(
          absl::StrCat(TensorLabel(i, in.name()), ": the request's tensors decode to more than ",
                       limit, " bytes with their metadata (--max-decompressed-bytes), after ",
                       i + 1, " of ", request.tensors_size()));
    }
  }
  return absl::OkStatus();
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

absl::Status RunListCodecs(const v1::ListCodecsRequest&, v1::ListCodecsResponse* response,
                           const OpsOptions&) {
  for (const CatalogueEntry& e : CodecCatalogue()) {
    proto::CatalogueEntryToProto(e, response->add_codecs());
  }
  return absl::OkStatus();
}

}  // namespace kvcomp::server

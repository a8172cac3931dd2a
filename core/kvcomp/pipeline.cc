#include "core/kvcomp/pipeline.h"

#include "absl/strings/str_cat.h"
#include "core/kvcomp/internal/status_macros.h"
#include "core/kvcomp/registry.h"

namespace kvcomp {
namespace {

StreamDesc InitialDesc(const TensorMeta& meta) {
  return StreamDesc{ElemTypeOf(meta.dtype), GeometryOf(meta)};
}

// The typed streams between two stages may hold at most this many times the tensor's bytes,
// plus a little for the side tables of tiny tensors. No stage needs more (quant with one group
// per element is 4x), and it bounds what a crafted frame can make a decoder allocate
// (docs/FORMAT.md, decoding rule 4): without it an empty tensor with huge other dims planned
// petabyte group tables (found by the fuzzers: tests/fuzz/regressions/*/quant-empty-tensor-*).
constexpr double kMaxPlanExpansion = 8;
constexpr double kPlanSlackBytes = 1 << 16;

double TypedBytes(const std::vector<StreamDesc>& descs) {
  double bytes = 0;  // in double: a hostile geometry's product must not wrap around
  for (const StreamDesc& d : descs) {
    if (d.opaque()) continue;
    bytes += static_cast<double>(d.geom.planes) * static_cast<double>(d.geom.rows) *
             static_cast<double>(d.geom.cols) * static_cast<double>(ElemSize(d.type));
  }
  return bytes;
}

// Block-quantised tensors (Q8_0, Q4_0) are kept bit-exact: a lossy stage would re-quantise
// values that are already quantised, and its error would be measured on blocks, not values.
absl::Status CheckLossless(const std::vector<std::unique_ptr<Stage>>& stages,
                           const TensorMeta& meta) {
  if (!IsBlockQuantized(meta.dtype)) return absl::OkStatus();
  for (const auto& stage : stages) {
    if (stage->lossless()) continue;
    return absl::InvalidArgumentError(absl::StrCat(
        DTypeName(meta.dtype), " tensors are compressed losslessly only: '", stage->Spec(),
        "' is lossy, and the cache is already quantised (use lossless, lossless-max or "
        "qsplit+huff)"));
  }
  return absl::OkStatus();
}

// The stream descs before each stage and after the last: plan[i] feeds stage i.
absl::StatusOr<std::vector<std::vector<StreamDesc>>> PlanAll(
    const std::vector<std::unique_ptr<Stage>>& stages, const TensorMeta& meta) {
  KV_RETURN_IF_ERROR(CheckLossless(stages, meta));
  std::vector<std::vector<StreamDesc>> plan{{InitialDesc(meta)}};
  const double max_bytes =
      kMaxPlanExpansion * static_cast<double>(meta.NumBytes()) + kPlanSlackBytes;
  for (const auto& stage : stages) {
    auto next = PlanStage(*stage, plan.back());
    if (!next.ok()) {
      return absl::Status(next.status().code(),
                          absl::StrCat("stage '", stage->Spec(), "': ", next.status().message()));
    }
    if (next->size() > kMaxStreams) {
      return absl::InvalidArgumentError(
          absl::StrCat("stage '", stage->Spec(), "' would emit too many streams"));
    }
    if (TypedBytes(*next) > max_bytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("stage '", stage->Spec(), "' would need ", TypedBytes(*next),
                       " bytes of streams for a tensor of ", meta.NumBytes(), " bytes, shape ",
                       meta.ShapeString()));
    }
    plan.push_back(std::move(*next));
  }
  return plan;
}

}  // namespace

absl::StatusOr<std::vector<StreamDesc>> PlanStage(const Stage& stage,
                                                  absl::Span<const StreamDesc> in) {
  if (!stage.info().takes_blocks) {
    for (const StreamDesc& d : in) {
      if (!IsBlockElem(d.type)) continue;
      return absl::InvalidArgumentError(
          absl::StrCat("takes no ", ElemTypeName(d.type),
                       " blocks (quantised caches: lossless, lossless-max, zstd, or qsplit "
                       "first, e.g. qsplit+huff)"));
    }
  }
  return stage.Plan(in);
}

absl::StatusOr<Pipeline> Pipeline::FromStages(std::vector<std::unique_ptr<Stage>> stages) {
  if (stages.empty()) return absl::InvalidArgumentError("a pipeline needs at least one stage");
  if (stages.size() > kMaxStages) {
    return absl::InvalidArgumentError(
        absl::StrCat("a pipeline has at most ", kMaxStages, " stages"));
  }
  for (size_t i = 0; i < stages.size(); ++i) {
    if (stages[i]->info().lossy_may_follow) continue;
    for (size_t j = i + 1; j < stages.size(); ++j) {
      if (stages[j]->lossless()) continue;
      return absl::InvalidArgumentError(absl::StrCat(
          "stage '", stages[i]->Spec(), "' cannot come before the lossy stage '", stages[j]->Spec(),
          "' (its decoder needs its output back exactly): put it after"));
    }
  }
  return Pipeline(std::move(stages));
}

absl::StatusOr<Pipeline> Pipeline::FromSpec(const SpecPipeline& spec) {
  std::vector<std::unique_ptr<Stage>> stages;
  for (const SpecNode& node : spec) {
    KV_ASSIGN_OR_RETURN(auto stage, StageRegistry::Get().Create(node));
    stages.push_back(std::move(stage));
  }
  return FromStages(std::move(stages));
}

absl::StatusOr<Pipeline> Pipeline::FromSpec(absl::string_view spec) {
  KV_ASSIGN_OR_RETURN(SpecPipeline parsed, ParseSpec(spec));
  return FromSpec(parsed);
}

std::string Pipeline::Spec() const {
  std::string out;
  for (const auto& s : stages_) absl::StrAppend(&out, out.empty() ? "" : "+", s->Spec());
  return out;
}

bool Pipeline::lossless() const {
  for (const auto& s : stages_) {
    if (!s->lossless()) return false;
  }
  return true;
}

absl::StatusOr<Pipeline::Begun> Pipeline::EncodeBegin(const TensorView& tensor) const {
  Begun begun;
  KV_ASSIGN_OR_RETURN(begun.plan, PlanAll(stages_, tensor.meta()));
  Streams in;
  in.push_back(Stream::Borrow(begun.plan[0][0], tensor.bytes()));
  const Stage& first = *stages_[0];
  bool rest_lossless = true;
  for (size_t i = 1; i < stages_.size(); ++i) rest_lossless &= stages_[i]->lossless();
  if (!first.lossless() && first.MeasuresWhileEncoding() && rest_lossless) {
    KV_RETURN_IF_ERROR(first.EncodeMeasuring(in, &begun.streams, &begun.error.emplace()));
  } else {
    KV_RETURN_IF_ERROR(first.Encode(in, &begun.streams));
  }
  return begun;
}

absl::StatusOr<std::vector<uint8_t>> Pipeline::EncodeFinish(const TensorView& tensor,
                                                            Begun begun) const {
  Streams streams = std::move(begun.streams);
  for (size_t i = 1; i < stages_.size(); ++i) {
    Streams out;
    KV_RETURN_IF_ERROR(stages_[i]->Encode(streams, &out));
    streams = std::move(out);
  }
  FrameHeader header;
  header.meta = tensor.meta();
  for (const auto& s : stages_) header.stages.push_back(FrameStage{s->info().id, s->values()});
  std::vector<absl::Span<const uint8_t>> payload;
  for (const Stream& s : streams) payload.push_back(s.data());
  return WriteFrame(header, payload);
}

absl::StatusOr<std::vector<uint8_t>> Pipeline::Encode(const TensorView& tensor) const {
  KV_ASSIGN_OR_RETURN(Begun begun, EncodeBegin(tensor));
  return EncodeFinish(tensor, std::move(begun));
}

namespace {

// Whether `earlier` can decode from the pieces of its one input stream (`mid`, what `later`
// decodes) as `later` makes them.
bool CanFuse(const Stage& earlier, absl::Span<const StreamDesc> mid,
             absl::Span<const StreamDesc> want) {
  return earlier.DecodesElementwise() && mid.size() == 1 && want.size() == 1 && !mid[0].opaque() &&
         !want[0].opaque() && mid[0].geom.size() == want[0].geom.size();
}

// Decodes two stages at once (Stage::DecodeStreaming): each piece of `later`'s stream goes
// through `earlier` while it is in cache, instead of the whole stream going out to memory and
// being read back. The result is DoDecode's to the byte; want[0] is made in `into` when given.
absl::Status DecodeFused(const Stage& later, const Stage& earlier, const Streams& encoded,
                         absl::Span<const StreamDesc> mid, absl::Span<const StreamDesc> want,
                         absl::Span<uint8_t> into, Streams* decoded) {
  const StreamDesc& desc = want[0];
  uint8_t* dst;
  Stream out = Stream::Output(desc, into, &dst);
  const size_t total = desc.geom.size(), es = ElemSize(desc.type);
  size_t next = 0;
  bool in_order = true;
  Streams middle;
  KV_RETURN_IF_ERROR(later.DecodeStreaming(
      encoded, mid,
      [&](size_t first, size_t count, const uint8_t* bytes) {
        if (!in_order || first != next || count > total - first) {
          in_order = false;
          return;
        }
        earlier.DecodeElements(desc, bytes, count, dst + first * es);
        next = first + count;
      },
      &middle));
  if (!middle.empty() || !in_order || next != total) {
    return absl::InternalError(absl::StrCat("stage '", later.Spec(), "' streamed ", next, " of ",
                                            total, " elements", in_order ? "" : " out of order"));
  }
  decoded->push_back(std::move(out));
  return CheckStageStreams(earlier, "decode", *decoded, want);
}

}  // namespace

absl::StatusOr<TensorMeta> DecodeFrameInto(
    absl::Span<const uint8_t> frame,
    absl::FunctionRef<absl::Span<uint8_t>(const TensorMeta&)> buffer, const DecodeLimits& limits) {
  KV_ASSIGN_OR_RETURN(ParsedFrame parsed, ParseFrame(frame));
  const TensorMeta& meta = parsed.header.meta;
  if (meta.NumBytes() > limits.max_decoded_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("frame decodes to ", meta.NumBytes(), " bytes (shape ", meta.ShapeString(),
                     "), over the limit of ", limits.max_decoded_bytes));
  }
  std::vector<std::unique_ptr<Stage>> stages;
  for (const FrameStage& fs : parsed.header.stages) {
    KV_ASSIGN_OR_RETURN(auto stage, StageRegistry::Get().Create(fs.id, fs.values));
    stages.push_back(std::move(stage));
  }
  auto plan_or = PlanAll(stages, meta);
  if (!plan_or.ok()) {
    return absl::DataLossError(
        absl::StrCat("frame's stages do not fit its tensor: ", plan_or.status().message()));
  }
  const auto& plan = *plan_or;
  Streams streams;
  for (size_t i = 0; i < parsed.streams.size(); ++i) {
    if (i >= plan.back().size()) break;
    streams.push_back(Stream::Borrow(plan.back()[i], parsed.streams[i]));
  }
  KV_RETURN_IF_ERROR(CheckStageStreams(*stages.back(), "frame", streams, plan.back()));
  if (parsed.streams.size() != plan.back().size()) {
    return absl::DataLossError(absl::StrCat("frame holds ", parsed.streams.size(),
                                            " streams, its stages make ", plan.back().size()));
  }
  const absl::Span<uint8_t> into = buffer(meta);
  if (into.size() != meta.NumBytes()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the output buffer holds ", into.size(), " bytes; the frame decodes to ", meta.NumBytes()));
  }
  for (size_t i = stages.size(); i-- > 0;) {
    Streams decoded;
    if (i > 0 && CanFuse(*stages[i - 1], plan[i], plan[i - 1])) {
      KV_RETURN_IF_ERROR(DecodeFused(*stages[i], *stages[i - 1], streams, plan[i], plan[i - 1],
                                     i == 1 ? into : absl::Span<uint8_t>(), &decoded));
      streams = std::move(decoded);
      --i;  // stage i - 1 is decoded too
      continue;
    }
    KV_RETURN_IF_ERROR(i == 0 ? stages[0]->DecodeInto(streams, plan[0], into, &decoded)
                              : stages[i]->Decode(streams, plan[i], &decoded));
    KV_RETURN_IF_ERROR(CheckStageStreams(*stages[i], "decode", decoded, plan[i]));
    streams = std::move(decoded);
  }
  // DecodeInto leaves the tensor in `into` (an empty tensor has nothing to place).
  if (!into.empty() && streams[0].data().data() != into.data()) {
    return absl::InternalError("decoded tensor is not in the output buffer");
  }
  return meta;
}

absl::StatusOr<Tensor> DecodeFrame(absl::Span<const uint8_t> frame, const DecodeLimits& limits) {
  Tensor out;
  KV_ASSIGN_OR_RETURN(out.meta, DecodeFrameInto(
                                    frame,
                                    [&out](const TensorMeta& meta) {
                                      out.bytes.resize(meta.NumBytes());
                                      return absl::MakeSpan(out.bytes);
                                    },
                                    limits));
  return out;
}

}  // namespace kvcomp

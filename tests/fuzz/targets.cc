#include "tests/fuzz/targets.h"

#include <cmath>
#include <cstring>
#include <memory>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/kvcomp/checksum.h"
#include "core/kvcomp/codec.h"
#include "core/kvcomp/error_bounds.h"
#include "core/kvcomp/preset.h"
#include "core/kvcomp/registry.h"
#include "tests/fuzz/fuzz_input.h"

namespace kvcomp::fuzz {
namespace {

// Frames: magic(4) version(1) length(8) ... checksum(8).
constexpr size_t kLengthOffset = 5;
constexpr size_t kMinFrameBytes = 13 + kFrameChecksumBytes;
// Tensors the round-trip target compresses: big enough for real block and group structure.
constexpr uint64_t kMaxTensorBytes = 64 << 10;

DecodeLimits FuzzLimits() {
  DecodeLimits limits;
  limits.max_decoded_bytes = kMaxDecodedBytes;
  return limits;
}

bool SameMeta(const TensorMeta& a, const TensorMeta& b) {
  return a.dtype == b.dtype && a.layout == b.layout && a.kind == b.kind && a.layer == b.layer &&
         a.shape == b.shape;
}

bool SameHeader(const FrameHeader& a, const FrameHeader& b) {
  if (a.version != b.version || !SameMeta(a.meta, b.meta) || a.stream_bytes != b.stream_bytes ||
      a.stages.size() != b.stages.size()) {
    return false;
  }
  for (size_t i = 0; i < a.stages.size(); ++i) {
    if (a.stages[i].id != b.stages[i].id || a.stages[i].values != b.stages[i].values) return false;
  }
  return true;
}

// What a reader may answer for bytes it did not write (docs/FORMAT.md, decoding rules).
void CheckDecodeError(const absl::Status& s, absl::string_view what) {
  const auto code = s.code();
  KV_FUZZ_CHECK(code == absl::StatusCode::kDataLoss || code == absl::StatusCode::kInvalidArgument ||
                    code == absl::StatusCode::kResourceExhausted,
                what, ": ", s.ToString());
}

// What a codec may answer for a tensor it cannot serve: a bad spec or tensor, or a bound it
// cannot meet with fallback=none. Anything else (INTERNAL, DATA_LOSS on its own frame) is a bug.
void CheckCompressError(const absl::Status& s, absl::string_view spec) {
  const auto code = s.code();
  KV_FUZZ_CHECK(
      code == absl::StatusCode::kInvalidArgument || code == absl::StatusCode::kFailedPrecondition,
      "compress with '", spec, "': ", s.ToString());
}

bool SameDouble(double a, double b) { return a == b || (std::isnan(a) && std::isnan(b)); }

bool SameError(const ErrorStats& a, const ErrorStats& b) {
  return a.count == b.count && SameDouble(a.mae, b.mae) && SameDouble(a.rel_mae, b.rel_mae) &&
         SameDouble(a.max_abs, b.max_abs) && SameDouble(a.rmse, b.rmse) &&
         SameDouble(a.rel_rmse, b.rel_rmse) && SameDouble(a.cosine, b.cosine) &&
         SameDouble(a.snr_db, b.snr_db) && a.mismatched_nonfinite == b.mismatched_nonfinite;
}

// The concrete pipeline a frame records, as a spec, and whether every stage is lossless.
std::string FrameSpec(const ParsedFrame& f, bool* lossless) {
  std::string spec;
  *lossless = true;
  for (const FrameStage& st : f.header.stages) {
    auto stage = StageRegistry::Get().Create(st.id, st.values);
    KV_FUZZ_CHECK(stage.ok(), "stage of a parsed frame: ", stage.status().ToString());
    absl::StrAppend(&spec, spec.empty() ? "" : "+", (*stage)->Spec());
    *lossless = *lossless && (*stage)->lossless();
  }
  return spec;
}

void CheckParsedFrame(absl::Span<const uint8_t> data, const ParsedFrame& f) {
  KV_FUZZ_CHECK(f.frame_bytes <= data.size(), f.frame_bytes, " > ", data.size());
  KV_FUZZ_CHECK(f.streams.size() == f.header.stream_bytes.size(), "stream count");
  for (size_t i = 0; i < f.streams.size(); ++i) {
    const auto& s = f.streams[i];
    KV_FUZZ_CHECK(s.size() == f.header.stream_bytes[i], "stream ", i, " size");
    KV_FUZZ_CHECK(s.empty() || (s.data() >= data.data() &&
                                s.data() + s.size() <= data.data() + f.frame_bytes),
                  "stream ", i, " points outside its frame");
  }
  // A header whose parameters are in range writes back to a frame that parses to itself.
  for (const FrameStage& st : f.header.stages) {
    const StageInfo* info = StageRegistry::Get().FindById(st.id);
    KV_FUZZ_CHECK(info != nullptr, "parsed an unknown stage id ", st.id);
    if (!CheckParams(*info, st.values).ok()) return;
  }
  const auto rewritten = WriteFrame(f.header, f.streams).value();
  auto again = ParseFrame(rewritten);
  KV_FUZZ_CHECK(again.ok(), "rewritten frame: ", again.status().ToString());
  KV_FUZZ_CHECK(SameHeader(f.header, again->header), "rewritten header differs");
  for (size_t i = 0; i < f.streams.size(); ++i) {
    KV_FUZZ_CHECK(std::equal(f.streams[i].begin(), f.streams[i].end(), again->streams[i].begin(),
                             again->streams[i].end()),
                  "rewritten stream ", i, " differs");
  }
}

void CheckDecoded(const ParsedFrame& f, const Tensor& t) {
  KV_FUZZ_CHECK(SameMeta(t.meta, f.header.meta), "decoded meta differs from the header");
  KV_FUZZ_CHECK(t.bytes.size() == t.meta.NumBytes(), t.bytes.size(), " bytes for ",
                t.meta.ShapeString());
}

void CheckFrameBytes(absl::Span<const uint8_t> data) {
  auto parsed = ParseFrame(data);
  if (parsed.ok()) {
    CheckParsedFrame(data, *parsed);
  } else {
    CheckDecodeError(parsed.status(), "ParseFrame");
  }
  auto decoded = DecodeFrame(data, FuzzLimits());
  if (decoded.ok()) {
    KV_FUZZ_CHECK(parsed.ok(), "decoded a frame that does not parse");
    CheckDecoded(*parsed, *decoded);
  } else {
    CheckDecodeError(decoded.status(), "DecodeFrame");
    if (!parsed.ok()) {
      KV_FUZZ_CHECK(decoded.status() == parsed.status(), "decode and parse disagree");
    }
  }
  auto frames = SplitFrames(data);
  if (!frames.ok()) {
    CheckDecodeError(frames.status(), "SplitFrames");
    return;
  }
  size_t total = 0;
  for (size_t i = 0; i < frames->size(); ++i) {
    const auto frame = (*frames)[i];
    KV_FUZZ_CHECK(frame.data() == data.data() + total, "frame ", i, " is not where the last ended");
    total += frame.size();
    if (i == 0) continue;  // decoded above
    auto t = DecodeFrame(frame, FuzzLimits());
    if (!t.ok()) CheckDecodeError(t.status(), "DecodeFrame of a split frame");
  }
  KV_FUZZ_CHECK(total == data.size(), "split frames cover ", total, " of ", data.size(), " bytes");
}

// Tensors for codecs built from fuzzed specs: real-looking values (smooth, with an outlier
// channel), K and V, two layers, each dtype, both layouts.
const std::vector<Tensor>& SmallTensors() {
  static const auto* tensors = [] {
    auto* out = new std::vector<Tensor>;
    int i = 0;
    for (DType dtype : {DType::kFP16, DType::kBF16, DType::kFP32}) {
      for (Layout layout : {Layout::kHeadMajor, Layout::kTokenMajor}) {
        Tensor t;
        t.meta.dtype = dtype;
        t.meta.layout = layout;
        t.meta.kind = i % 2 ? Kind::kValue : Kind::kKey;
        t.meta.layer = i % 3;
        t.meta.shape = {2, 6, 4};
        const uint64_t n = t.meta.NumElements();
        std::vector<float> v(n);
        for (uint64_t j = 0; j < n; ++j) {
          v[j] = std::sin(0.37f * j + i) * (j % 4 == 3 ? 9.0f : 1.0f);
        }
        t.bytes.resize(t.meta.NumBytes());
        if (dtype == DType::kFP32) {
          std::memcpy(t.bytes.data(), v.data(), t.bytes.size());
        } else {
          std::vector<uint16_t> h(n);
          dtype == DType::kFP16 ? FloatToHalf(v.data(), h.data(), n)
                                : FloatToBf16(v.data(), h.data(), n);
          std::memcpy(t.bytes.data(), h.data(), t.bytes.size());
        }
        out->push_back(std::move(t));
        ++i;
      }
    }
    return out;
  }();
  return *tensors;
}

// Replaces NaN and infinity by zero, so lossy codecs (which refuse them) get to run.
void MakeFinite(Tensor& t) {
  if (IsBlockQuantized(t.meta.dtype)) return;  // blocks, not floats: every pattern is fine
  const size_t size = DTypeSize(t.meta.dtype);
  const uint64_t n = t.meta.NumElements();
  for (uint64_t i = 0; i < n; ++i) {
    uint8_t* p = t.bytes.data() + i * size;
    float v;
    ToFloat(t.meta.dtype, p, &v, 1);
    if (!std::isfinite(v)) std::memset(p, 0, size);
  }
}

// The whole contract of one Compress call, given the codec's spec as a string.
void CheckRoundTrip(const Codec& codec, const Tensor& t, const std::string& spec,
                    const SpecNode* bounded) {
  auto out = codec.Compress(t.view());
  if (!out.ok()) {
    CheckCompressError(out.status(), spec);
    return;
  }
  const TensorReport& r = out->report;
  KV_FUZZ_CHECK(r.compressed_bytes == out->frame.size(), spec);
  KV_FUZZ_CHECK(r.raw_bytes == t.bytes.size(), spec);
  KV_FUZZ_CHECK(SameMeta(r.meta, t.meta), spec);
  auto frames = SplitFrames(out->frame);
  KV_FUZZ_CHECK(frames.ok() && frames->size() == 1, spec, ": not one frame");
  auto parsed = ParseFrame(out->frame);
  KV_FUZZ_CHECK(parsed.ok(), spec, ": ", parsed.status().ToString());
  bool lossless;
  const std::string recorded = FrameSpec(*parsed, &lossless);
  KV_FUZZ_CHECK(recorded == r.spec, spec, ": frame records '", recorded, "', report says '", r.spec,
                "'");
  // A lossless pipeline always reports lossless; a lossy one may, on a tensor it kept bit-exact
  // (checked below).
  KV_FUZZ_CHECK(!lossless || r.lossless, spec, ": lossless flag");

  auto back = Decompress(out->frame);
  KV_FUZZ_CHECK(back.ok(), spec, ": own frame does not decode: ", back.status().ToString());
  CheckDecoded(*parsed, *back);
  if (r.lossless) {
    KV_FUZZ_CHECK(back->bytes == t.bytes, spec, ": lossless round trip is not bit-exact");
    KV_FUZZ_CHECK(!r.error.has_value(), spec);
  } else {
    KV_FUZZ_CHECK(r.error.has_value(), spec, ": lossy report without error");
    const ErrorStats e = MeasureError(t.view(), back->view());
    KV_FUZZ_CHECK(SameError(e, *r.error), spec, ": decoded error differs from the report (max_abs ",
                  e.max_abs, " vs ", r.error->max_abs, ")");
  }
  if (bounded && !r.lossless) {
    auto bounds = ParseErrorBounds(*bounded, nullptr);
    if (bounds.ok()) {
      KV_FUZZ_CHECK(bounds->Pass(*r.error), spec,
                    ": bounds broken: ", bounds->Violations(*r.error));
    }
  }
  // The recorded pipeline is a spec that reproduces the frame exactly.
  auto again = MakeCodec(r.spec);
  KV_FUZZ_CHECK(again.ok(), "recorded spec '", r.spec, "': ", again.status().ToString());
  auto out2 = (*again)->Compress(t.view());
  KV_FUZZ_CHECK(out2.ok() && out2->frame == out->frame, spec, ": recorded spec '", r.spec,
                "' does not reproduce the frame");
}

}  // namespace

void FuzzFrame(absl::Span<const uint8_t> data) {
  CheckFrameBytes(data);
  if (data.size() < kMinFrameBytes) return;
  std::vector<uint8_t> fixed(data.begin(), data.end());
  const uint64_t length = fixed.size();
  for (int i = 0; i < 8; ++i) fixed[kLengthOffset + i] = static_cast<uint8_t>(length >> (8 * i));
  const uint64_t sum =
      FrameChecksum(absl::MakeConstSpan(fixed).first(length - kFrameChecksumBytes));
  for (size_t i = 0; i < kFrameChecksumBytes; ++i) {
    fixed[length - kFrameChecksumBytes + i] = static_cast<uint8_t>(sum >> (8 * i));
  }
  CheckFrameBytes(fixed);
}

void FuzzStageDecode(absl::Span<const uint8_t> data) {
  InputReader in(data);
  FrameHeader header;
  header.stages = ReadStages(in);
  header.meta = ReadMeta(in);
  auto descs = PlanFinalStreams(header.meta, header.stages);
  std::vector<std::vector<uint8_t>> streams;
  if (header.meta.Validate().ok() && descs.ok()) {
    streams = ReadStreams(in, *descs, kMaxDecodedBytes);
  } else {
    const auto rest = in.Rest();
    streams.emplace_back(rest.begin(), rest.end());
  }
  // A raw float parameter may lie outside its schema, which WriteFrame refuses to write (and
  // the reader refuses to build a stage from); fuzz_frame reaches that refusal in raw frames.
  for (const FrameStage& st : header.stages) {
    if (!CheckParams(*StageRegistry::Get().FindById(st.id), st.values).ok()) return;
  }
  const std::vector<absl::Span<const uint8_t>> spans(streams.begin(), streams.end());
  const auto frame = WriteFrame(header, spans).value();
  auto parsed = ParseFrame(frame);
  auto decoded = DecodeFrame(frame, FuzzLimits());
  if (!decoded.ok()) {
    CheckDecodeError(decoded.status(), "DecodeFrame");
    return;
  }
  KV_FUZZ_CHECK(parsed.ok(), "decoded a frame that does not parse");
  CheckDecoded(*parsed, *decoded);
  // Decoding is a function of the frame.
  auto twice = DecodeFrame(frame, FuzzLimits());
  KV_FUZZ_CHECK(twice.ok() && twice->bytes == decoded->bytes, "decoding is not deterministic");
  // A lossless pipeline encodes whatever it decoded, and decodes that back bit-exact.
  bool lossless;
  const std::string spec = FrameSpec(*parsed, &lossless);
  if (!lossless) return;
  auto pipeline = Pipeline::FromSpec(spec);
  KV_FUZZ_CHECK(pipeline.ok(), spec, ": ", pipeline.status().ToString());
  auto encoded = pipeline->Encode(decoded->view());
  KV_FUZZ_CHECK(encoded.ok(), spec, ": cannot re-encode: ", encoded.status().ToString());
  auto back = DecodeFrame(*encoded, FuzzLimits());
  KV_FUZZ_CHECK(back.ok() && back->bytes == decoded->bytes, spec, ": re-encode round trip");
}

void FuzzSpec(absl::Span<const uint8_t> data) {
  const std::string text(data.begin(), data.end());
  auto parsed = ParseSpec(text);
  if (parsed.ok()) {
    const std::string canonical = FormatSpec(*parsed);
    auto again = ParseSpec(canonical);
    KV_FUZZ_CHECK(again.ok(), "canonical '", canonical, "': ", again.status().ToString());
    KV_FUZZ_CHECK(FormatSpec(*again) == canonical, "FormatSpec is not a fixed point: ", canonical);
  } else {
    KV_FUZZ_CHECK(parsed.status().code() == absl::StatusCode::kInvalidArgument,
                  parsed.status().ToString());
  }
  auto codec = MakeCodec(text);
  if (!codec.ok()) {
    KV_FUZZ_CHECK(codec.status().code() == absl::StatusCode::kInvalidArgument,
                  codec.status().ToString());
    return;
  }
  KV_FUZZ_CHECK(parsed.ok(), "MakeCodec accepted a spec ParseSpec refuses");
  // A codec's own spec names the same codec.
  const std::string spec = (*codec)->Spec();
  auto again = MakeCodec(spec);
  KV_FUZZ_CHECK(again.ok(), "'", text, "' -> '", spec, "': ", again.status().ToString());
  KV_FUZZ_CHECK((*again)->Spec() == spec, "'", spec, "' -> '", (*again)->Spec(), "'");
  const SpecNode* bounded =
      parsed->size() == 1 && (*parsed)[0].name == "bounded" ? &(*parsed)[0] : nullptr;
  for (const Tensor& t : SmallTensors()) CheckRoundTrip(**codec, t, spec, bounded);
}

void FuzzRoundTrip(absl::Span<const uint8_t> data) {
  InputReader in(data);
  const uint8_t flags = in.U8();
  std::unique_ptr<Codec> codec;
  std::optional<SpecPipeline> parsed;
  if (flags & 1) {
    // A spec string, from the seeds' examples of every stage and preset.
    const std::string text = in.CString();
    auto made = MakeCodec(text);
    if (!made.ok()) return;
    codec = std::move(*made);
    parsed = *ParseSpec(text);
  } else {
    // A pipeline of registered stages with in-range parameters.
    std::vector<std::unique_ptr<Stage>> stages;
    for (const FrameStage& st : ReadStages(in)) {
      auto stage = StageRegistry::Get().Create(st.id, st.values);
      if (!stage.ok()) return;
      stages.push_back(std::move(*stage));
    }
    auto pipeline = Pipeline::FromStages(std::move(stages));
    // The one order it refuses: a lossy stage after one whose decoder needs its output exact.
    if (!pipeline.ok()) {
      KV_FUZZ_CHECK(absl::IsInvalidArgument(pipeline.status()) &&
                        absl::StrContains(pipeline.status().message(), "before the lossy stage"),
                    pipeline.status().ToString());
      return;
    }
    codec = MakePipelineCodec(std::move(*pipeline));
  }
  Tensor t;
  t.meta = ReadMeta(in);
  if (!t.meta.Validate().ok() || t.meta.NumBytes() > kMaxTensorBytes) return;
  t.bytes.resize(t.meta.NumBytes());
  const auto rest = in.Rest();
  for (size_t i = 0; !rest.empty() && i < t.bytes.size(); ++i) t.bytes[i] = rest[i % rest.size()];
  if (flags & 2) MakeFinite(t);
  const SpecNode* bounded =
      parsed && parsed->size() == 1 && (*parsed)[0].name == "bounded" ? &(*parsed)[0] : nullptr;
  CheckRoundTrip(*codec, t, codec->Spec(), bounded);
}

}  // namespace kvcomp::fuzz

#include "tests/fuzz/fuzz_input.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/kvcomp/pipeline.h"
#include "core/kvcomp/registry.h"

namespace kvcomp::fuzz {
namespace {

constexpr size_t kMaxStagesRead = 3;
constexpr size_t kMaxRankRead = 4;
constexpr uint64_t kMaxDim = uint64_t{1} << 56;  // the frame format's own ceiling

// How a float parameter is encoded in a fuzz input.
enum FloatMode : uint8_t { kRaw = 0, kLinear = 1, kLog = 2, kEnd = 3 };

FailureHandler g_failure_handler = nullptr;

const StageInfo& StageFor(uint8_t id) {
  const auto& reg = StageRegistry::Get();
  if (const StageInfo* info = reg.FindById(id)) return *info;
  return *reg.all()[id % reg.all().size()];
}

double ReadParam(const ParamDef& def, InputReader& in) {
  switch (def.type) {
    case ParamType::kInt: {
      const uint64_t span = static_cast<uint64_t>(def.max - def.min) + 1;
      return def.min + static_cast<double>(in.U32() % span);
    }
    case ParamType::kEnum:
      return def.choices.empty() ? 0 : static_cast<double>(in.U8() % def.choices.size());
    case ParamType::kFloat:
      break;
  }
  const uint8_t mode = in.U8() % 4;
  if (mode == kRaw) return in.F64();
  if (mode == kEnd) return in.U8() % 2 ? def.max : def.min;
  const double t = in.U32() / 4294967295.0;
  if (mode == kLog && def.min > 0) {
    return std::exp(std::log(def.min) + t * (std::log(def.max) - std::log(def.min)));
  }
  return def.min + t * (def.max - def.min);
}

void WriteParam(const ParamDef& def, double v, InputWriter& out) {
  switch (def.type) {
    case ParamType::kInt:
      out.U32(static_cast<uint32_t>(v - def.min));
      return;
    case ParamType::kEnum:
      out.U8(static_cast<uint8_t>(v));
      return;
    case ParamType::kFloat:
      out.U8(kRaw);
      out.F64(v);
      return;
  }
}

}  // namespace

uint8_t InputReader::U8() { return pos_ < data_.size() ? data_[pos_++] : 0; }

uint32_t InputReader::U32() {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(U8()) << (8 * i);
  return v;
}

double InputReader::F64() {
  uint64_t u = 0;
  for (int i = 0; i < 8; ++i) u |= static_cast<uint64_t>(U8()) << (8 * i);
  double v;
  std::memcpy(&v, &u, 8);
  return v;
}

uint64_t InputReader::Varint() {
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    const uint8_t b = U8();
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) break;
  }
  return v;
}

absl::Span<const uint8_t> InputReader::Bytes(size_t n) {
  n = std::min(n, remaining());
  const auto out = data_.subspan(pos_, n);
  pos_ += n;
  return out;
}

std::string InputReader::CString() {
  std::string s;
  while (pos_ < data_.size()) {
    const char c = static_cast<char>(data_[pos_++]);
    if (c == '\0') break;
    s.push_back(c);
  }
  return s;
}

void InputWriter::U32(uint32_t v) {
  for (int i = 0; i < 4; ++i) U8(static_cast<uint8_t>(v >> (8 * i)));
}

void InputWriter::F64(double v) {
  uint64_t u;
  std::memcpy(&u, &v, 8);
  for (int i = 0; i < 8; ++i) U8(static_cast<uint8_t>(u >> (8 * i)));
}

void InputWriter::Varint(uint64_t v) {
  while (v >= 0x80) {
    U8(static_cast<uint8_t>(v | 0x80));
    v >>= 7;
  }
  U8(static_cast<uint8_t>(v));
}

void InputWriter::CString(const std::string& s) {
  Bytes(absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
  U8(0);
}

std::vector<FrameStage> ReadStages(InputReader& in) {
  std::vector<FrameStage> stages(1 + in.U8() % kMaxStagesRead);
  for (FrameStage& st : stages) {
    const StageInfo& info = StageFor(in.U8());
    st.id = info.id;
    for (const ParamDef& def : info.params) st.values.push_back(ReadParam(def, in));
  }
  return stages;
}

void WriteStages(const std::vector<FrameStage>& stages, InputWriter& out) {
  out.U8(static_cast<uint8_t>(stages.size() - 1));
  for (const FrameStage& st : stages) {
    out.U8(st.id);
    const StageInfo* info = StageRegistry::Get().FindById(st.id);
    for (size_t i = 0; info && i < info->params.size(); ++i) {
      WriteParam(info->params[i], st.values[i], out);
    }
  }
}

// The dtype byte: 0..0xef pick FP32, FP16, BF16 (as they did before the quantised types, so
// regression inputs keep their meaning); 0xf0..0xff pick Q8_0 (even) or Q4_0 (odd).
DType ReadDType(uint8_t b) {
  if (b >= 0xf0) return b % 2 ? DType::kQ4_0 : DType::kQ8_0;
  return static_cast<DType>(1 + b % 3);
}

uint8_t DTypeByte(DType dtype) {
  if (IsBlockQuantized(dtype)) return dtype == DType::kQ8_0 ? 0xf0 : 0xf1;
  return static_cast<uint8_t>(dtype) - 1;
}

TensorMeta ReadMeta(InputReader& in) {
  TensorMeta meta;
  meta.dtype = ReadDType(in.U8());
  meta.layout = static_cast<Layout>(1 + in.U8() % 2);
  meta.kind = static_cast<Kind>(in.U8() % 3);
  meta.layer = std::max<int32_t>(-1, static_cast<int8_t>(in.U8()));
  const size_t rank = 1 + in.U8() % kMaxRankRead;
  for (size_t i = 0; i < rank; ++i) {
    meta.shape.push_back(static_cast<int64_t>(std::min(in.Varint(), kMaxDim)));
  }
  return meta;
}

void WriteMeta(const TensorMeta& meta, InputWriter& out) {
  out.U8(DTypeByte(meta.dtype));
  out.U8(static_cast<uint8_t>(meta.layout) - 1);
  out.U8(static_cast<uint8_t>(meta.kind));
  out.U8(static_cast<uint8_t>(static_cast<int8_t>(meta.layer)));
  out.U8(static_cast<uint8_t>(meta.shape.size() - 1));
  for (int64_t d : meta.shape) out.Varint(static_cast<uint64_t>(d));
}

absl::StatusOr<std::vector<StreamDesc>> PlanFinalStreams(const TensorMeta& meta,
                                                         const std::vector<FrameStage>& stages) {
  std::vector<StreamDesc> descs{{ElemTypeOf(meta.dtype), GeometryOf(meta)}};
  for (const FrameStage& st : stages) {
    auto stage = StageRegistry::Get().Create(st.id, st.values);
    if (!stage.ok()) return stage.status();
    auto next = PlanStage(**stage, descs);
    if (!next.ok()) return next.status();
    descs = std::move(*next);
  }
  return descs;
}

std::vector<std::vector<uint8_t>> ReadStreams(InputReader& in, absl::Span<const StreamDesc> descs,
                                              uint64_t max_typed_bytes) {
  std::vector<std::vector<uint8_t>> out;
  for (const StreamDesc& d : descs) {
    const uint64_t n = d.opaque() ? in.Varint() : d.bytes();
    const auto got = in.Bytes(static_cast<size_t>(std::min<uint64_t>(n, in.remaining())));
    auto& s = out.emplace_back(got.begin(), got.end());
    if (!d.opaque() && n <= max_typed_bytes) s.resize(n);
  }
  return out;
}

void WriteStreams(absl::Span<const StreamDesc> descs,
                  const std::vector<absl::Span<const uint8_t>>& streams, InputWriter& out) {
  for (size_t i = 0; i < descs.size() && i < streams.size(); ++i) {
    if (descs[i].opaque()) out.Varint(streams[i].size());
    out.Bytes(streams[i]);
  }
}

void SetFailureHandler(FailureHandler handler) { g_failure_handler = handler; }

void Fail(const std::string& what) {
  if (g_failure_handler) g_failure_handler(what);
  std::fprintf(stderr, "kvcomp fuzz check failed: %s\n", what.c_str());
  std::abort();
}

}  // namespace kvcomp::fuzz

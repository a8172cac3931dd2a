#include "tests/tools/examples.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "core/kvcomp/preset.h"
#include "core/kvcomp/registry.h"

namespace kvcomp::tools {
namespace {

constexpr int64_t kHeads = 4;
constexpr int64_t kHeadDim = 8;

// Argument patterns of the released presets ($L: a lossless spec, $Y: a lossy one). A new
// preset whose arguments fit none of them is reported as uncovered: add its pattern here.
constexpr const char* kPresetPatterns[] = {
    "$P(cos=0.9999)",
    "$P(cos=0.999,rel_mae=0.05,coder=zstd(1))",
    "$P(max_abs=0.01,fallback=none)",
    "$P(1,$L,$Y)",
    "$P(k=$L,v=$Y)",
    "$P(0=$L,default=$Y)",
    "$P($L)",
    "$P(sink=2,recent=4,$Y)",
    "$P",
};

// Some stages take only some dtypes (cast narrows FP32 only), so one probe is enough.
bool CompressesAny(const std::string& spec, const std::vector<Tensor>& probes) {
  auto codec = MakeCodec(spec);
  if (!codec.ok()) return false;
  for (const Tensor& t : probes) {
    if ((*codec)->Compress(t.view()).ok()) return true;
  }
  return false;
}

std::string DefaultSpec(const StageInfo& info) {
  SpecNode node;
  node.name = std::string(info.name);
  auto stage = StageRegistry::Get().Create(node);
  return stage.ok() ? (*stage)->Spec() : std::string(info.name);
}

// The stage with its defaults, then once per choice of each enum parameter.
std::vector<std::string> StageVariants(const StageInfo& info) {
  std::vector<std::string> out{DefaultSpec(info)};
  for (const ParamDef& def : info.params) {
    if (def.type != ParamType::kEnum) continue;
    for (absl::string_view choice : def.choices) {
      out.push_back(absl::StrCat(info.name, "(", def.name, "=", choice, ")"));
    }
  }
  return out;
}

}  // namespace

Tensor QuantiseAsGgml(const Tensor& values, DType to) {
  const uint64_t n = values.meta.NumElements();
  std::vector<float> x(n);
  ToFloat(values.meta.dtype, values.bytes.data(), x.data(), n);
  Tensor q;
  q.meta = values.meta;
  q.meta.dtype = to;
  q.meta.shape.back() /= 32;
  q.bytes.resize(q.meta.NumBytes());
  uint8_t* out = q.bytes.data();
  for (uint64_t b = 0; b < n / 32; ++b, out += DTypeSize(to)) {
    const float* v = &x[b * 32];
    float amax = 0, max = 0;
    for (int j = 0; j < 32; ++j) {
      if (std::fabs(v[j]) > amax) amax = std::fabs(v[j]), max = v[j];
    }
    // Q8_0: d = amax / 127, q = round(x / d). Q4_0: d = max / -8, q = min(15, x / d + 8.5).
    const float d = to == DType::kQ8_0 ? amax / 127 : max / -8;
    const float id = d != 0 ? 1 / d : 0;
    const uint16_t h = FloatToHalfBits(d);
    std::memcpy(out, &h, 2);
    for (int j = 0; j < 32 && to == DType::kQ8_0; ++j) {
      out[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(std::lround(v[j] * id)));
    }
    for (int j = 0; j < 16 && to == DType::kQ4_0; ++j) {
      const int lo = std::min(15, static_cast<int>(static_cast<int8_t>(v[j] * id + 8.5f)));
      const int hi = std::min(15, static_cast<int>(static_cast<int8_t>(v[j + 16] * id + 8.5f)));
      out[2 + j] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
  return q;
}

absl::StatusOr<Tensor> LoadKvSlice(const std::string& dir, const std::string& run, int layer,
                                   Kind kind, DType dtype, int64_t tokens) {
  if (IsBlockQuantized(dtype)) {
    auto values = LoadKvSlice(dir, run, layer, kind, DType::kFP32, tokens);
    if (!values.ok()) return values.status();
    Tensor tm = *values;  // [heads, tokens, dim] -> [tokens, heads x dim]
    tm.meta.layout = Layout::kTokenMajor;
    tm.meta.shape = {tokens, kHeads * kHeadDim};
    for (int64_t h = 0; h < kHeads; ++h) {
      for (int64_t t = 0; t < tokens; ++t) {
        std::memcpy(&tm.bytes[(t * kHeads + h) * kHeadDim * 4],
                    &values->bytes[(h * tokens + t) * kHeadDim * 4], kHeadDim * 4);
      }
    }
    return QuantiseAsGgml(tm, dtype);
  }
  const std::string ext = dtype == DType::kFP16 ? ".f16" : ".f32";
  const auto path = std::filesystem::path(dir) / run /
                    absl::StrCat("layer", layer, kind == Kind::kKey ? "_k" : "_v", ext);
  std::ifstream f(path, std::ios::binary);
  if (!f) return absl::NotFoundError(absl::StrCat("cannot read ", path.string()));
  const std::vector<uint8_t> all((std::istreambuf_iterator<char>(f)), {});
  const size_t esize = dtype == DType::kFP16 ? 2 : 4;
  const int64_t total = static_cast<int64_t>(all.size() / esize / (kHeads * kHeadDim));
  if (tokens > total) {
    return absl::InvalidArgumentError(absl::StrCat(path.string(), " holds ", total, " tokens"));
  }
  Tensor t;
  t.meta.dtype = dtype;
  t.meta.kind = kind;
  t.meta.layer = layer;
  t.meta.shape = {kHeads, tokens, kHeadDim};
  std::vector<uint8_t> raw;  // in the file's element type
  for (int64_t h = 0; h < kHeads; ++h) {
    const auto* from = all.data() + h * total * kHeadDim * esize;
    raw.insert(raw.end(), from, from + tokens * kHeadDim * esize);
  }
  if (dtype != DType::kBF16) {
    t.bytes = std::move(raw);
    return t;
  }
  const size_t n = raw.size() / 4;
  std::vector<float> v(n);
  std::memcpy(v.data(), raw.data(), raw.size());
  std::vector<uint16_t> b(n);
  FloatToBf16(v.data(), b.data(), n);
  t.bytes.resize(n * 2);
  std::memcpy(t.bytes.data(), b.data(), t.bytes.size());
  return t;
}

std::vector<Example> ExampleSpecs(const std::vector<Tensor>& probes,
                                  std::vector<std::string>* uncovered) {
  std::vector<Example> out;
  std::set<std::string> seen;
  auto add = [&](const std::string& spec, absl::string_view covers) {
    if (seen.count(spec) || !CompressesAny(spec, probes)) return false;
    seen.insert(spec);
    out.push_back({spec, std::string(covers)});
    return true;
  };
  std::vector<std::string> lossless, lossy;
  const auto& stages = StageRegistry::Get().all();
  for (const auto& info : stages) {
    (info->lossless ? lossless : lossy).push_back(DefaultSpec(*info));
  }
  for (const auto& info : stages) {
    bool covered = false;
    for (const std::string& variant : StageVariants(*info)) {
      covered |= add(variant, info->name);
      for (const std::string& backend : lossless) {
        covered |= add(absl::StrCat(variant, "+", backend), info->name);
      }
    }
    if (!covered && uncovered) uncovered->push_back(absl::StrCat("stage ", info->name));
  }
  // Presets take the first lossless and lossy stage specs that work on their own.
  std::string any_lossless, any_lossy;
  for (const Example& e : out) {
    auto codec = MakeCodec(e.spec);
    auto c = (*codec)->Compress(probes.front().view());
    if (!c.ok()) continue;
    std::string& slot = c->report.lossless ? any_lossless : any_lossy;
    if (slot.empty()) slot = e.spec;
  }
  for (const PresetInfo& preset : PresetRegistry::Get().all()) {
    bool covered = false;
    for (const char* pattern : kPresetPatterns) {
      covered |= add(absl::StrReplaceAll(
                         pattern, {{"$P", preset.name}, {"$L", any_lossless}, {"$Y", any_lossy}}),
                     preset.name);
    }
    if (!covered && uncovered) uncovered->push_back(absl::StrCat("preset ", preset.name));
  }
  return out;
}

}  // namespace kvcomp::tools

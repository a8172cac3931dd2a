// Policies that route each tensor to a codec by its place in the cache. One mechanism, a
// list of (rule, codec) pairs tried in order, serves three spellings:
//   mixed(N, FIRST, REST)               the seed's "first N layers lossless, the rest lossy"
//   kv(k=SPEC, v=SPEC)                  different pipelines for K and V
//   layers(0-1=SPEC, 2-7=SPEC, default=SPEC)   a per-layer schedule
#include <limits>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/kvcomp/internal/quote.h"
#include "core/kvcomp/internal/status_macros.h"
#include "core/kvcomp/preset.h"

namespace kvcomp {
namespace {

struct Rule {
  int32_t first_layer = std::numeric_limits<int32_t>::min();
  int32_t last_layer = std::numeric_limits<int32_t>::max();
  Kind kind = Kind::kUnspecified;  // kUnspecified matches both
  std::unique_ptr<Codec> codec;
  bool Matches(const TensorMeta& m) const {
    return m.layer >= first_layer && m.layer <= last_layer &&
           (kind == Kind::kUnspecified || kind == m.kind);
  }
};

class RoutingCodec final : public Codec {
 public:
  RoutingCodec(std::string spec, std::vector<Rule> rules)
      : spec_(std::move(spec)), rules_(std::move(rules)) {}
  std::string Spec() const override { return spec_; }
  absl::StatusOr<CompressedTensor> Compress(const TensorView& tensor) const override {
    for (const Rule& rule : rules_) {
      if (rule.Matches(tensor.meta())) return rule.codec->Compress(tensor);
    }
    return absl::InvalidArgumentError(absl::StrCat("policy ", Quote(spec_),
                                                   " has no rule for layer ", tensor.meta().layer,
                                                   " ", KindName(tensor.meta().kind)));
  }

 private:
  std::string spec_;
  std::vector<Rule> rules_;
};

std::string NodeSpec(const SpecNode& node) { return FormatSpec(SpecPipeline{node}); }

absl::StatusOr<std::unique_ptr<Codec>> ArgCodec(const SpecNode& node, const SpecArg& arg) {
  auto codec = MakeCodec(arg.value);
  if (!codec.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        node.name, ": argument ", Quote(FormatSpec(arg.value)), ": ", codec.status().message()));
  }
  return codec;
}

absl::StatusOr<std::unique_ptr<Codec>> MakeMixed(const SpecNode& node) {
  if (node.args.size() != 3 || !node.args[0].key.empty()) {
    return absl::InvalidArgumentError(
        "mixed takes (N, FIRST_SPEC, REST_SPEC), e.g. mixed(2,lossless,bounded(cos=0.9999))");
  }
  int32_t n;
  if (!absl::SimpleAtoi(SpecNode::Scalar(node.args[0]), &n) || n < 0) {
    return absl::InvalidArgumentError(absl::StrCat("mixed: N must be a layer count >= 0, got ",
                                                   Quote(FormatSpec(node.args[0].value))));
  }
  std::vector<Rule> rules(2);
  rules[0].last_layer = n - 1;
  KV_ASSIGN_OR_RETURN(rules[0].codec, ArgCodec(node, node.args[1]));
  KV_ASSIGN_OR_RETURN(rules[1].codec, ArgCodec(node, node.args[2]));
  return std::make_unique<RoutingCodec>(NodeSpec(node), std::move(rules));
}

absl::StatusOr<std::unique_ptr<Codec>> MakeKv(const SpecNode& node) {
  std::vector<Rule> rules;
  for (const SpecArg& arg : node.args) {
    Rule rule;
    if (arg.key == "k") {
      rule.kind = Kind::kKey;
    } else if (arg.key == "v") {
      rule.kind = Kind::kValue;
    } else if (arg.key != "default") {
      return absl::InvalidArgumentError(
          absl::StrCat("kv: arguments are k=SPEC, v=SPEC and default=SPEC; got ",
                       Quote(arg.key.empty() ? FormatSpec(arg.value) : arg.key)));
    }
    KV_ASSIGN_OR_RETURN(rule.codec, ArgCodec(node, arg));
    rules.push_back(std::move(rule));
  }
  if (rules.empty()) return absl::InvalidArgumentError("kv needs k=SPEC and v=SPEC");
  return std::make_unique<RoutingCodec>(NodeSpec(node), std::move(rules));
}

absl::StatusOr<std::unique_ptr<Codec>> MakeLayers(const SpecNode& node) {
  std::vector<Rule> rules;
  for (const SpecArg& arg : node.args) {
    Rule rule;
    if (arg.key != "default") {
      std::vector<absl::string_view> ends = absl::StrSplit(arg.key, '-');
      int32_t a, b;
      if (ends.size() > 2 || !absl::SimpleAtoi(ends[0], &a) || !absl::SimpleAtoi(ends.back(), &b) ||
          a < 0 || b < a) {
        return absl::InvalidArgumentError(absl::StrCat(
            "layers: ", Quote(arg.key), " is not a layer or range like 3 or 0-7 (or 'default')"));
      }
      rule.first_layer = a;
      rule.last_layer = b;
    }
    KV_ASSIGN_OR_RETURN(rule.codec, ArgCodec(node, arg));
    rules.push_back(std::move(rule));
  }
  if (rules.empty()) return absl::InvalidArgumentError("layers needs at least one RANGE=SPEC");
  return std::make_unique<RoutingCodec>(NodeSpec(node), std::move(rules));
}

}  // namespace

void RegisterRoutingPresets(PresetRegistry& r) {
  r.Register(PresetInfo{.name = "mixed",
                        .summary = "first N layers with one spec, the rest with another",
                        .make = MakeMixed,
                        .usage = "mixed(N,FIRST,REST)",
                        .exactness = PresetExactness::kAsArguments,
                        .policy = true});
  r.Register(PresetInfo{.name = "kv",
                        .summary = "one spec for K, another for V",
                        .make = MakeKv,
                        .usage = "kv(k=SPEC,v=SPEC)",
                        .exactness = PresetExactness::kAsArguments,
                        .policy = true});
  r.Register(PresetInfo{.name = "layers",
                        .summary = "a per-layer schedule; `default` covers the layers not named",
                        .make = MakeLayers,
                        .usage = "layers(0-1=SPEC,5=SPEC,default=SPEC)",
                        .exactness = PresetExactness::kAsArguments,
                        .policy = true});
}

}  // namespace kvcomp

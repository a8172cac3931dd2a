#include "core/kvcomp/registry.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/kvcomp/internal/quote.h"
#include "core/kvcomp/stages/stage_list.h"

namespace kvcomp {
namespace {

absl::StatusOr<double> ParseParamValue(const StageInfo& info, const ParamDef& def,
                                       absl::string_view text) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("codec '", info.name, "': parameter '", def.name,
                                                   "' ", why, " (got ", Quote(text), ")"));
  };
  if (text.empty()) return bad("needs a value");
  switch (def.type) {
    case ParamType::kInt: {
      int64_t v;
      if (!absl::SimpleAtoi(text, &v)) return bad("must be an integer");
      return static_cast<double>(v);
    }
    case ParamType::kFloat: {
      double v;
      if (!absl::SimpleAtod(text, &v) || !std::isfinite(v)) return bad("must be a finite number");
      return v;
    }
    case ParamType::kEnum:
      for (size_t i = 0; i < def.choices.size(); ++i) {
        if (def.choices[i] == text) return static_cast<double>(i);
      }
      return bad(absl::StrCat("must be one of ", absl::StrJoin(def.choices, ", ")));
  }
  return bad("has an unknown type");
}

}  // namespace

const StageRegistry& StageRegistry::Get() {
  static const StageRegistry* registry = [] {
    auto* r = new StageRegistry;
    RegisterAllStages(*r);
    return r;
  }();
  return *registry;
}

void StageRegistry::Register(StageInfo info) {
  if (info.id == 0 || FindById(info.id) || FindByName(info.name)) {
    std::fprintf(stderr, "kvcomp: stage '%.*s' (id %d) registered twice or with id 0\n",
                 static_cast<int>(info.name.size()), info.name.data(), info.id);
    std::abort();
  }
  stages_.push_back(std::make_unique<StageInfo>(std::move(info)));
}

const StageInfo* StageRegistry::FindByName(absl::string_view name) const {
  for (const auto& s : stages_) {
    if (s->name == name) return s.get();
  }
  return nullptr;
}

const StageInfo* StageRegistry::FindById(uint8_t id) const {
  for (const auto& s : stages_) {
    if (s->id == id) return s.get();
  }
  return nullptr;
}

absl::Status CheckParams(const StageInfo& info, const ParamValues& values) {
  if (values.size() != info.params.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "codec '", info.name, "' takes ", info.params.size(), " parameters, got ", values.size()));
  }
  for (size_t i = 0; i < values.size(); ++i) {
    const ParamDef& def = info.params[i];
    const double v = values[i];
    const bool integral = def.type != ParamType::kFloat;
    const double lo = def.type == ParamType::kEnum ? 0 : def.min;
    const double hi =
        def.type == ParamType::kEnum ? static_cast<double>(def.choices.size()) - 1 : def.max;
    if (!std::isfinite(v) || (integral && v != std::floor(v)) || v < lo || v > hi) {
      return absl::InvalidArgumentError(absl::StrCat("codec '", info.name, "': parameter '",
                                                     def.name, "' = ", v, " is out of range [", lo,
                                                     ", ", hi, "]"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Stage>> StageRegistry::Create(const SpecNode& node) const {
  const StageInfo* info = FindByName(node.name);
  if (!info) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown codec ", Quote(node.name), " (offset ", node.pos, ")"));
  }
  ParamValues values;
  std::vector<bool> set(info->params.size(), false);
  for (const ParamDef& def : info->params) values.push_back(def.default_value);
  size_t positional = 0;
  for (const SpecArg& arg : node.args) {
    size_t index;
    if (arg.key.empty()) {
      index = positional++;
      if (index >= info->params.size()) {
        return absl::InvalidArgumentError(absl::StrCat("codec '", info->name, "' takes at most ",
                                                       info->params.size(), " parameters"));
      }
    } else {
      index = info->params.size();
      for (size_t i = 0; i < info->params.size(); ++i) {
        if (info->params[i].name == arg.key) index = i;
      }
      if (index == info->params.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("codec '", info->name, "' has no parameter ", Quote(arg.key)));
      }
    }
    if (set[index]) {
      return absl::InvalidArgumentError(absl::StrCat("codec '", info->name, "': parameter '",
                                                     info->params[index].name, "' given twice"));
    }
    set[index] = true;
    const absl::string_view text = SpecNode::Scalar(arg);
    auto value = ParseParamValue(*info, info->params[index], text);
    if (!value.ok()) return value.status();
    values[index] = *value;
  }
  if (absl::Status s = CheckParams(*info, values); !s.ok()) return s;
  return info->make(*info, values);
}

absl::StatusOr<std::unique_ptr<Stage>> StageRegistry::Create(uint8_t id,
                                                             const ParamValues& values) const {
  const StageInfo* info = FindById(id);
  if (!info) {
    return absl::InvalidArgumentError(
        absl::StrCat("frame uses stage id ", id, ", which this build does not know"));
  }
  if (absl::Status s = CheckParams(*info, values); !s.ok()) {
    return absl::DataLossError(absl::StrCat("frame has bad parameters: ", s.message()));
  }
  return info->make(*info, values);
}

}  // namespace kvcomp

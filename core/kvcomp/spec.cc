#include "core/kvcomp/spec.h"

#include <cctype>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/kvcomp/internal/quote.h"

namespace kvcomp {
namespace {

// Nesting and length limits keep hostile specs from exhausting the stack or memory.
constexpr size_t kMaxSpecLength = 4096;
constexpr int kMaxDepth = 16;

bool IsNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
}

class Parser {
 public:
  explicit Parser(absl::string_view text) : text_(text) {}

  absl::StatusOr<SpecPipeline> ParseAll() {
    SpecPipeline p;
    if (absl::Status s = ParsePipeline(0, &p); !s.ok()) return s;
    SkipSpace();
    if (pos_ != text_.size()) return Error("unexpected");
    return p;
  }

 private:
  absl::Status ParsePipeline(int depth, SpecPipeline* out) {
    if (depth > kMaxDepth) return Error("spec nests too deeply at");
    while (true) {
      SpecNode node;
      if (absl::Status s = ParseNode(depth, &node); !s.ok()) return s;
      out->push_back(std::move(node));
      SkipSpace();
      if (pos_ < text_.size() && text_[pos_] == '+') {
        ++pos_;
        continue;
      }
      return absl::OkStatus();
    }
  }

  absl::Status ParseNode(int depth, SpecNode* node) {
    SkipSpace();
    node->pos = pos_;
    node->name = std::string(ReadName());
    if (node->name.empty()) return Error("expected a name at");
    SkipSpace();
    if (pos_ >= text_.size() || text_[pos_] != '(') return absl::OkStatus();
    node->has_parens = true;
    ++pos_;
    SkipSpace();
    if (pos_ < text_.size() && text_[pos_] == ')') {
      ++pos_;
      return absl::OkStatus();
    }
    while (true) {
      SpecArg arg;
      SkipSpace();
      arg.pos = pos_;
      // A key is a name directly followed by '='; otherwise rewind and read a pipeline.
      const size_t save = pos_;
      absl::string_view key = ReadName();
      SkipSpace();
      if (!key.empty() && pos_ < text_.size() && text_[pos_] == '=') {
        arg.key = std::string(key);
        ++pos_;
      } else {
        pos_ = save;
      }
      if (absl::Status s = ParsePipeline(depth + 1, &arg.value); !s.ok()) return s;
      node->args.push_back(std::move(arg));
      SkipSpace();
      if (pos_ < text_.size() && text_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < text_.size() && text_[pos_] == ')') {
        ++pos_;
        return absl::OkStatus();
      }
      return Error(
          absl::StrCat("expected ',' or ')' after arguments of ", Quote(node->name), " at"));
    }
  }

  absl::string_view ReadName() {
    const size_t start = pos_;
    while (pos_ < text_.size() && IsNameChar(text_[pos_])) ++pos_;
    return text_.substr(start, pos_ - start);
  }

  void SkipSpace() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }

  absl::Status Error(absl::string_view what) const {
    if (pos_ >= text_.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad codec spec ", Quote(text_), ": ", what, " end of spec"));
    }
    return absl::InvalidArgumentError(absl::StrCat("bad codec spec ", Quote(text_), ": ", what, " ",
                                                   Quote(text_.substr(pos_, 12)), " (offset ", pos_,
                                                   ")"));
  }

  absl::string_view text_;
  size_t pos_ = 0;
};

void FormatNode(const SpecNode& node, std::string* out) {
  out->append(node.name);
  if (!node.has_parens && node.args.empty()) return;
  out->push_back('(');
  for (size_t i = 0; i < node.args.size(); ++i) {
    if (i) out->push_back(',');
    if (!node.args[i].key.empty()) absl::StrAppend(out, node.args[i].key, "=");
    out->append(FormatSpec(node.args[i].value));
  }
  out->push_back(')');
}

}  // namespace

absl::string_view SpecNode::Scalar(const SpecArg& arg) {
  if (arg.value.size() != 1 || arg.value[0].has_parens) return {};
  return arg.value[0].name;
}

absl::StatusOr<SpecPipeline> ParseSpec(absl::string_view text) {
  if (text.size() > kMaxSpecLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("codec spec is ", text.size(), " characters; the limit is ", kMaxSpecLength));
  }
  return Parser(text).ParseAll();
}

std::string FormatSpec(const SpecPipeline& pipeline) {
  std::string out;
  for (size_t i = 0; i < pipeline.size(); ++i) {
    if (i) out.push_back('+');
    FormatNode(pipeline[i], &out);
  }
  return out;
}

}  // namespace kvcomp

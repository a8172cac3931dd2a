#include "tests/support/prom_text.h"

#include <cerrno>
#include <cstdlib>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace kvcomp::testing {
namespace {

bool IsNameChar(char c, bool first) {
  return absl::ascii_isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':' ||
         (!first && absl::ascii_isdigit(static_cast<unsigned char>(c)));
}

void SkipSpaces(absl::string_view* s) {
  while (!s->empty() && (s->front() == ' ' || s->front() == '\t')) s->remove_prefix(1);
}

std::string TakeName(absl::string_view* s) {
  size_t n = 0;
  while (n < s->size() && IsNameChar((*s)[n], n == 0)) ++n;
  std::string name(s->substr(0, n));
  s->remove_prefix(n);
  return name;
}

// Reads `{a="x",b="y"}` (the leading '{' already consumed).
bool TakeLabels(absl::string_view* s, PromLabels* labels) {
  for (;;) {
    SkipSpaces(s);
    if (s->empty()) return false;
    if (s->front() == '}') {
      s->remove_prefix(1);
      return true;
    }
    std::string key = TakeName(s);
    SkipSpaces(s);
    if (key.empty() || s->size() < 2 || (*s)[0] != '=' || (*s)[1] != '"') return false;
    s->remove_prefix(2);
    std::string value;
    for (;;) {
      if (s->empty()) return false;
      const char c = s->front();
      s->remove_prefix(1);
      if (c == '"') break;
      if (c != '\\') {
        value.push_back(c);
        continue;
      }
      if (s->empty()) return false;
      const char e = s->front();
      s->remove_prefix(1);
      value.push_back(e == 'n' ? '\n' : e);  // \\ and \" stand for themselves
    }
    if (!labels->emplace(std::move(key), std::move(value)).second) return false;
    SkipSpaces(s);
    if (!s->empty() && s->front() == ',') s->remove_prefix(1);
  }
}

bool ParseValue(absl::string_view text, double* value) {
  const std::string s(text);
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  *value = std::strtod(s.c_str(), &end);  // also takes +Inf, -Inf, NaN (any case)
  return end == s.c_str() + s.size();
}

}  // namespace

absl::StatusOr<PromMetrics> PromMetrics::Parse(absl::string_view text) {
  PromMetrics metrics;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) continue;
    auto bad = [&](absl::string_view why) {
      return absl::DataLossError(absl::StrCat("metrics line ", line_no, ": ", why, ": ", line));
    };
    if (line.front() == '#') {
      std::vector<absl::string_view> words = absl::StrSplit(line, ' ', absl::SkipEmpty());
      if (words.size() >= 4 && words[1] == "TYPE") {
        metrics.types_[std::string(words[2])] = std::string(words[3]);
      }
      continue;
    }
    PromSample sample;
    absl::string_view rest = line;
    sample.name = TakeName(&rest);
    if (sample.name.empty()) return bad("no metric name");
    if (!rest.empty() && rest.front() == '{') {
      rest.remove_prefix(1);
      if (!TakeLabels(&rest, &sample.labels)) return bad("malformed labels");
    }
    std::vector<absl::string_view> fields = absl::StrSplit(rest, ' ', absl::SkipWhitespace());
    if (fields.empty() || fields.size() > 2)
      return bad("expected a value and an optional timestamp");
    if (!ParseValue(fields[0], &sample.value)) return bad("bad value");
    metrics.samples_.push_back(std::move(sample));
  }
  return metrics;
}

std::vector<PromSample> PromMetrics::Find(absl::string_view name, const PromLabels& match) const {
  std::vector<PromSample> out;
  for (const PromSample& s : samples_) {
    if (s.name != name) continue;
    bool ok = true;
    for (const auto& [key, value] : match) {
      auto it = s.labels.find(key);
      if (it == s.labels.end() || it->second != value) {
        ok = false;
        break;
      }
    }
    if (ok) out.push_back(s);
  }
  return out;
}

std::optional<double> PromMetrics::Value(absl::string_view name, const PromLabels& labels) const {
  for (const PromSample& s : samples_) {
    if (s.name == name && s.labels == labels) return s.value;
  }
  return std::nullopt;
}

double PromMetrics::Sum(absl::string_view name, const PromLabels& match) const {
  double sum = 0;
  for (const PromSample& s : Find(name, match)) sum += s.value;
  return sum;
}

std::string PromMetrics::TypeOf(absl::string_view family) const {
  auto it = types_.find(family);
  return it == types_.end() ? std::string() : it->second;
}

}  // namespace kvcomp::testing

#include "core/kvcomp/internal/quote.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace kvcomp {

std::string Quote(absl::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return absl::StrCat("'", absl::Utf8SafeCHexEscape(text), "'");
  return absl::StrCat("'", absl::Utf8SafeCHexEscape(text.substr(0, max_bytes)), "...' (",
                      text.size(), " bytes)");
}

}  // namespace kvcomp

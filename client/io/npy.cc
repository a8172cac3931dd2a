#include "client/io/npy.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/kvcomp/internal/status_macros.h"

namespace kvcomp::io {
namespace {

constexpr uint8_t kMagic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
constexpr size_t kMaxHeaderLen = size_t{1} << 20;  // numpy itself stops at 10 000 by default

absl::Status Bad(absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("bad .npy header: ", why));
}

// A parser for the one Python literal numpy writes: a dict of str -> str | bool | tuple[int].
class DictParser {
 public:
  explicit DictParser(absl::string_view text) : s_(text) {}

  absl::Status Parse(NpyHeader* out) {
    bool have_descr = false, have_order = false, have_shape = false;
    SkipWs();
    if (!Eat('{')) return Bad("dictionary does not start with '{'");
    while (true) {
      SkipWs();
      if (Eat('}')) break;
      std::string key;
      KV_RETURN_IF_ERROR(String(&key));
      SkipWs();
      if (!Eat(':')) return Bad(absl::StrCat("expected ':' after key '", key, "'"));
      SkipWs();
      if (key == "descr") {
        if (have_descr) return Bad("duplicate key 'descr'");
        KV_RETURN_IF_ERROR(String(&out->descr));
        have_descr = true;
      } else if (key == "fortran_order") {
        if (have_order) return Bad("duplicate key 'fortran_order'");
        KV_RETURN_IF_ERROR(Bool(&out->fortran_order));
        have_order = true;
      } else if (key == "shape") {
        if (have_shape) return Bad("duplicate key 'shape'");
        KV_RETURN_IF_ERROR(Tuple(&out->shape));
        have_shape = true;
      } else {
        return Bad(absl::StrCat("unexpected key '", key, "'"));
      }
      SkipWs();
      if (Eat(',')) continue;
      SkipWs();
      if (Eat('}')) break;
      return Bad("expected ',' or '}' in the dictionary");
    }
    SkipWs();
    if (pos_ != s_.size()) return Bad("unexpected text after the dictionary");
    if (!have_descr || !have_order || !have_shape) {
      return Bad("dictionary needs the keys 'descr', 'fortran_order' and 'shape'");
    }
    return absl::OkStatus();
  }

 private:
  void SkipWs() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n')) ++pos_;
  }
  bool Eat(char c) {
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool EatWord(absl::string_view w) {
    if (s_.substr(pos_, w.size()) == w) {
      pos_ += w.size();
      return true;
    }
    return false;
  }
  absl::Status String(std::string* out) {
    if (pos_ >= s_.size() || (s_[pos_] != '\'' && s_[pos_] != '"')) {
      return Bad("expected a quoted string");
    }
    const char q = s_[pos_++];
    const size_t end = s_.find(q, pos_);
    if (end == absl::string_view::npos) return Bad("unterminated string");
    *out = std::string(s_.substr(pos_, end - pos_));
    if (out->find('\\') != std::string::npos) return Bad("escapes in strings are not supported");
    if (out->size() > 64) return Bad("string too long");
    pos_ = end + 1;
    return absl::OkStatus();
  }
  absl::Status Bool(bool* out) {
    if (EatWord("True")) {
      *out = true;
    } else if (EatWord("False")) {
      *out = false;
    } else {
      return Bad("'fortran_order' must be True or False");
    }
    return absl::OkStatus();
  }
  absl::Status Tuple(std::vector<int64_t>* out) {
    if (!Eat('(')) return Bad("'shape' must be a tuple");
    while (true) {
      SkipWs();
      if (Eat(')')) return absl::OkStatus();
      if (out->size() >= kMaxRank) {
        return Bad(absl::StrCat("'shape' has more than ", kMaxRank, " dimensions"));
      }
      if (pos_ >= s_.size() || s_[pos_] < '0' || s_[pos_] > '9') {
        return Bad("'shape' entries must be non-negative integers");
      }
      int64_t v = 0;
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') {
        if (v > (int64_t{1} << 56)) return Bad("'shape' entry is absurdly large");
        v = v * 10 + (s_[pos_++] - '0');
      }
      Eat('L');  // Python 2 longs
      out->push_back(v);
      SkipWs();
      if (Eat(',')) continue;
      SkipWs();
      if (Eat(')')) return absl::OkStatus();
      return Bad("expected ',' or ')' in 'shape'");
    }
  }

  absl::string_view s_;
  size_t pos_ = 0;
};

std::string ShapeRepr(const std::vector<int64_t>& shape) {
  if (shape.size() == 1) return absl::StrCat("(", shape[0], ",)");
  return absl::StrCat("(", absl::StrJoin(shape, ", "), ")");
}

}  // namespace

absl::StatusOr<NpyHeader> ParseNpyHeader(absl::Span<const uint8_t> bytes) {
  if (bytes.size() < 10) {
    return Bad(absl::StrCat("truncated: ", bytes.size(), " bytes, less than the 10-byte preamble"));
  }
  if (std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) {
    return Bad("missing the \\x93NUMPY magic (not an .npy file)");
  }
  NpyHeader h;
  h.major = bytes[6];
  h.minor = bytes[7];
  if (h.major < 1 || h.major > 3 || h.minor != 0) {
    return Bad(absl::StrCat("unsupported format version ", h.major, ".", h.minor));
  }
  size_t len_bytes = h.major == 1 ? 2 : 4;
  if (bytes.size() < 8 + len_bytes) return Bad("truncated in the header length");
  uint64_t header_len = 0;
  for (size_t i = 0; i < len_bytes; ++i) header_len |= uint64_t{bytes[8 + i]} << (8 * i);
  if (header_len > kMaxHeaderLen) {
    return Bad(absl::StrCat("header length ", header_len, " is absurd"));
  }
  const size_t start = 8 + len_bytes;
  if (bytes.size() - start < header_len) {
    return Bad(absl::StrCat("truncated: header of ", header_len, " bytes but only ",
                            bytes.size() - start, " follow"));
  }
  absl::string_view text(reinterpret_cast<const char*>(bytes.data() + start), header_len);
  for (char c : text) {
    if (static_cast<unsigned char>(c) >= 0x80 || (c < 0x20 && c != '\n' && c != '\t')) {
      return Bad("header has non-ASCII or control characters");
    }
  }
  KV_RETURN_IF_ERROR(DictParser(text).Parse(&h));
  h.data_offset = start + header_len;
  return h;
}

absl::string_view NpyDescr(DType dtype) {
  switch (dtype) {
    case DType::kFP32:
      return "<f4";
    case DType::kFP16:
      return "<f2";
    case DType::kBF16:
      return "<u2";
    case DType::kQ8_0:
    case DType::kQ4_0:
      break;  // WriteKvCache refuses them before any writer runs
  }
  return "?";
}

absl::StatusOr<Tensor> ParseNpy(absl::Span<const uint8_t> bytes, const NpyDecodeOptions& options,
                                absl::string_view what) {
  auto header = ParseNpyHeader(bytes);
  if (!header.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", header.status().message()));
  }
  const NpyHeader& h = *header;
  Tensor t;
  const std::string& d = h.descr;
  if (d == "<f4") {
    t.meta.dtype = DType::kFP32;
  } else if (d == "<f2") {
    t.meta.dtype = DType::kFP16;
  } else if (d == "<u2" && options.u2_is_bf16) {
    t.meta.dtype = DType::kBF16;
  } else if (d == "<u2") {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": uint16 array ('<u2') without a kvcomp sidecar marking it BF16 (see docs)"));
  } else if (!d.empty() && d[0] == '>') {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": big-endian dtype '", d, "' is not supported; use '<f4'/'<f2'"));
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": unsupported dtype '", d, "' (supported: '<f4' FP32, '<f2' FP16, '<u2' BF16)"));
  }
  if (h.fortran_order && h.shape.size() > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": Fortran-order arrays are not supported; save in C order"));
  }
  t.meta.shape = h.shape;
  t.meta.layout = options.layout;
  if (absl::Status s = t.meta.Validate(); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", s.message()));
  }
  const uint64_t want = t.meta.NumBytes();
  const uint64_t have = bytes.size() - h.data_offset;
  if (have < want) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": truncated: shape ",
                                                   t.meta.ShapeString(), " x ", d, " needs ", want,
                                                   " data bytes, found ", have));
  }
  if (have > want) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", have - want,
                                                   " trailing bytes after the ", want,
                                                   " data bytes of shape ", t.meta.ShapeString()));
  }
  t.bytes.assign(bytes.begin() + h.data_offset, bytes.end());
  return t;
}

std::vector<uint8_t> EncodeNpyHeader(const TensorMeta& meta) {
  // numpy 1.24's _write_array_header: sorted keys, repr values, then space padding to a
  // 64-byte boundary ending in '\n' (plus room for the shape to grow, which we mirror).
  std::string dict =
      absl::StrCat("{'descr': '", NpyDescr(meta.dtype),
                   "', 'fortran_order': False, 'shape': ", ShapeRepr(meta.shape), ", }");
  if (!meta.shape.empty()) {
    const size_t digits = absl::StrCat(meta.shape[0]).size();
    if (digits < 21) dict.append(21 - digits, ' ');
  }
  // numpy pads by 64 - (prefix + hlen) % 64, i.e. 1..64 bytes, and moves to version 2.0
  // only when the version 1.0 length field cannot hold the header.
  int major = 1;
  size_t prefix = 10;
  const size_t hlen = dict.size() + 1;
  size_t total_len = hlen + (64 - (prefix + hlen) % 64);
  if (total_len > 65535) {
    major = 2;
    prefix = 12;
    total_len = hlen + (64 - (prefix + hlen) % 64);
  }
  std::vector<uint8_t> out(kMagic, kMagic + sizeof(kMagic));
  out.push_back(static_cast<uint8_t>(major));
  out.push_back(0);
  for (size_t i = 0; i < prefix - 8; ++i) out.push_back(static_cast<uint8_t>(total_len >> (8 * i)));
  out.insert(out.end(), dict.begin(), dict.end());
  out.resize(prefix + total_len - 1, ' ');
  out.push_back('\n');
  return out;
}

std::vector<uint8_t> EncodeNpy(const Tensor& tensor) {
  std::vector<uint8_t> out = EncodeNpyHeader(tensor.meta);
  out.insert(out.end(), tensor.bytes.begin(), tensor.bytes.end());
  return out;
}

}  // namespace kvcomp::io

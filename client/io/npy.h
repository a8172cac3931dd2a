// NumPy .npy files (format versions 1.0, 2.0 and 3.0).
//
// Supported element types: '<f4' (FP32), '<f2' (FP16), and '<u2' carrying BF16 bit patterns.
// NumPy has no bfloat16, so BF16 travels as uint16 (the bit pattern, unchanged) and a sidecar
// says which uint16 arrays are BF16 (see kvcomp_sidecar.h). C order only; big-endian and
// Fortran-order arrays are rejected with a clear message.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/kvcomp/tensor.h"

namespace kvcomp::io {

struct NpyHeader {
  int major = 1;
  int minor = 0;
  std::string descr;
  bool fortran_order = false;
  std::vector<int64_t> shape;
  size_t data_offset = 0;  // bytes before the array data
};

// Parses and checks the magic, version and header dictionary of an .npy image. Any problem
// (truncation, bad magic, unknown version, malformed dictionary, absurd shape) is
// INVALID_ARGUMENT naming it.
absl::StatusOr<NpyHeader> ParseNpyHeader(absl::Span<const uint8_t> bytes);

// How an .npy array becomes a tensor.
struct NpyDecodeOptions {
  bool u2_is_bf16 = false;  // a '<u2' array holds BF16 bit patterns
  Layout layout = Layout::kHeadMajor;
};

// Parses a whole .npy image into a tensor (layer -1, kind unspecified; see ApplyNameToMeta).
// The data must be exactly shape x itemsize bytes: a short file is "truncated", extra bytes
// are "trailing bytes". `what` names the source in messages.
absl::StatusOr<Tensor> ParseNpy(absl::Span<const uint8_t> bytes, const NpyDecodeOptions& options,
                                absl::string_view what);

// The .npy descr string for a dtype: "<f4", "<f2", "<u2" (BF16).
absl::string_view NpyDescr(DType dtype);

// The header (magic through the padded dictionary) of an .npy file holding `meta`, laid out
// as numpy writes it: version 1.0 unless the header needs 2.0, total length a multiple of 64.
std::vector<uint8_t> EncodeNpyHeader(const TensorMeta& meta);

// A complete .npy image (header plus data).
std::vector<uint8_t> EncodeNpy(const Tensor& tensor);

}  // namespace kvcomp::io

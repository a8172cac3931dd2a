// One byte plane (n bytes at a stride) coded as the huff format stores each plane: raw, a
// constant, or a length-limited canonical Huffman code in 4 interleaved segments, whichever is
// smallest. huff codes every byte plane of a stream with it, qhuff its plane of quotients.
// The 4 segments are independent bit streams, so a decoder can work on several at once.
// Layout: docs/FORMAT.md#huffman-plane.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/kvcomp/internal/byte_io.h"

namespace kvcomp::huffman {

// Appends the plane base[0], base[stride], ..., base[(n - 1) stride] to `out`. `top`: the most
// significant byte of a float (sign and exponent) or any plane that is never random in
// practice: it skips the quick test that stores random-looking small planes raw.
void EncodePlane(const uint8_t* base, size_t stride, size_t n, bool top, std::vector<uint8_t>* out);

// EncodePlane's bytes for a stride-1 plane of fewer than 2^18 bytes (which EncodePlane codes from
// exact counts), from the counts of each of its 4 segments (Segments in huffman_codes.h), exact,
// that the caller already has: qhuff's histogram of its quotients gives them.
void EncodeCountedPlane(const uint8_t* base, size_t n, const uint64_t seg_freq[4][256],
                        std::vector<uint8_t>* out);

// Decodes the next plane of n bytes from `br`: *plane points at them, in `scratch` (n bytes,
// not zeroed) or, for a raw plane, in the reader's input. With `bound`, *bound is at least every
// byte of the plane (the largest symbol of its code: a caller that checks the bytes' range needs
// to look at them only when it is 255, a raw plane). Errors name `stage`.
absl::Status DecodePlane(absl::string_view stage, ByteReader* br, size_t n, uint8_t* scratch,
                         const uint8_t** plane, uint8_t* bound = nullptr);

}  // namespace kvcomp::huffman

// What the byte-plane entropy coders (huff, rans) share: their per-stream layout, strided
// plane copies, and the two plane modes every such coder falls back to (raw, constant).
#pragma once

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "core/kvcomp/stages/stage_util.h"

namespace kvcomp::stage_util {

// Strided byte gather/scatter (one plane of interleaved words). Stride 2 is the FP16/BF16 low
// byte, the hot case, written so that -O2 vectorises it.
inline void Gather(const uint8_t* base, size_t stride, size_t n, uint8_t* dst) {
  if (stride == 2) {
    size_t i = 0;
#if defined(__SSE2__)
    const __m128i lo = _mm_set1_epi16(0x00ff);
    // i + 16 < n, not <=: the plane may start at base + 1 (the high byte), and the 32-byte
    // access would then touch one byte past the last element.
    for (; i + 16 < n; i += 16) {
      const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(base + 2 * i));
      const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(base + 2 * i + 16));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i),
                       _mm_packus_epi16(_mm_and_si128(a, lo), _mm_and_si128(b, lo)));
    }
#endif
    for (; i < n; ++i) dst[i] = base[2 * i];
    return;
  }
  for (size_t i = 0; i < n; ++i) dst[i] = base[i * stride];
}

// Interleaves byte planes into elements: byte j of element i is planes[es - 1 - j][i] (plane
// 0 is the most significant byte, as EncodeBytePlanes codes them). One pass of whole stores:
// decoding each plane into its element slots would read and write every output line once
// per plane.
inline void InterleavePlanes(const uint8_t* const* planes, size_t es, size_t n, uint8_t* out) {
  size_t i = 0;
#if defined(__SSE2__)
  if (es == 2) {
    for (; i + 16 <= n; i += 16) {
      const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(planes[1] + i));
      const __m128i hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(planes[0] + i));
      __m128i* o = reinterpret_cast<__m128i*>(out + 2 * i);
      _mm_storeu_si128(o, _mm_unpacklo_epi8(lo, hi));
      _mm_storeu_si128(o + 1, _mm_unpackhi_epi8(lo, hi));
    }
  } else if (es == 4) {
    const auto load = [&](int b) {
      return _mm_loadu_si128(reinterpret_cast<const __m128i*>(planes[b] + i));
    };
    for (; i + 16 <= n; i += 16) {
      const __m128i b0 = load(3), b1 = load(2), b2 = load(1), b3 = load(0);
      const __m128i lo01 = _mm_unpacklo_epi8(b0, b1), hi01 = _mm_unpackhi_epi8(b0, b1);
      const __m128i lo23 = _mm_unpacklo_epi8(b2, b3), hi23 = _mm_unpackhi_epi8(b2, b3);
      __m128i* o = reinterpret_cast<__m128i*>(out + 4 * i);
      _mm_storeu_si128(o, _mm_unpacklo_epi16(lo01, lo23));
      _mm_storeu_si128(o + 1, _mm_unpackhi_epi16(lo01, lo23));
      _mm_storeu_si128(o + 2, _mm_unpacklo_epi16(hi01, hi23));
      _mm_storeu_si128(o + 3, _mm_unpackhi_epi16(hi01, hi23));
    }
  }
#endif
  for (; i < n; ++i) {
    for (size_t j = 0; j < es; ++j) out[i * es + j] = planes[es - 1 - j][i];
  }
}

// Plane modes 0 and 1 of every byte-plane coder; its own modes start at 2.
inline constexpr uint8_t kPlaneRaw = 0;    // n bytes as they are
inline constexpr uint8_t kPlaneConst = 1;  // one byte, repeated n times

inline void PutRawPlane(const uint8_t* base, size_t stride, size_t n, std::vector<uint8_t>* out) {
  out->push_back(kPlaneRaw);
  const size_t at = out->size();
  out->resize(at + n);
  Gather(base, stride, n, out->data() + at);
}

inline void PutConstPlane(uint8_t v, std::vector<uint8_t>* out) {
  out->push_back(kPlaneConst);
  out->push_back(v);
}

// Decodes a raw or constant plane: *plane points at its n bytes, in the coded input (raw) or
// in `scratch` (constant). False, reading nothing more, for other modes.
inline bool DecodePlainPlane(absl::string_view stage, uint8_t mode, ByteReader* br, size_t n,
                             uint8_t* scratch, const uint8_t** plane, absl::Status* status) {
  if (mode == kPlaneRaw) {
    absl::Span<const uint8_t> raw;
    *status = br->Bytes(n, &raw) ? absl::OkStatus() : Corrupt(stage, "truncated raw plane");
    *plane = raw.data();
    return true;
  }
  if (mode == kPlaneConst) {
    uint8_t v = 0;
    *status = br->U8(&v) ? absl::OkStatus() : Corrupt(stage, "truncated constant plane");
    std::memset(scratch, v, n);
    *plane = scratch;
    return true;
  }
  return false;
}

// The byte-plane entropy coders' layout (huff, rans), inside EncodeTrimmed's: the n elements'
// byte planes, most significant first. `plane(b, n, s, &out)` codes plane b of stream s, whose
// bytes sit at s.data() + (size - 1 - b) with the element size as stride.
template <typename EncodePlane>
void EncodeBytePlanes(const Streams& in, Streams* out, EncodePlane plane) {
  EncodeTrimmed(in, out, [&plane](const Stream& s, size_t n, std::vector<uint8_t>* buf) {
    for (size_t b = 0; b < ElemSize(s.desc().type) && n; ++b) plane(b, n, s, buf);
  });
}

// Inverts EncodeBytePlanes. `plane(&reader, n, want, top, scratch, &bytes)` decodes the next
// plane of n elements from the reader and sets `bytes` to where they are: in `scratch` (n
// bytes), or in the coded stream itself (a raw plane). `top` is plane 0 once decoded (a
// context for the planes below it), null while plane 0 is decoded. The planes are then
// interleaved into the stream.
template <typename DecodePlane>
absl::Status DecodeBytePlanes(absl::string_view stage, const Streams& encoded,
                              absl::Span<const StreamDesc> want, absl::Span<uint8_t> into,
                              Streams* decoded, DecodePlane plane) {
  return DecodeTrimmed(
      stage, encoded, want, into, decoded,
      [&plane](ByteReader* br, size_t n, const StreamDesc& d, uint8_t* out) -> absl::Status {
        const size_t es = ElemSize(d.type);
        // A one-byte stream's single plane is decoded straight into the output; wider ones
        // into scratch (not zeroed: the planes fill it), then interleaved.
        std::unique_ptr<uint8_t[]> scratch(es > 1 && n ? new uint8_t[es * n] : nullptr);
        uint8_t* const into = es > 1 ? scratch.get() : out;
        const uint8_t* planes[4] = {};  // ElemSize is at most 4
        for (size_t b = 0; b < es && n; ++b) {
          if (absl::Status st = plane(br, n, d, planes[0], into + b * n, &planes[b]); !st.ok()) {
            return st;
          }
        }
        if (n && planes[0] != out) InterleavePlanes(planes, es, n, out);
        return absl::OkStatus();
      });
}

}  // namespace kvcomp::stage_util

// qhuff: canonical Huffman for quantised integer codes (the zigzag codes that uquant, quant and
// blocknorm emit), modelled the way their statistics call for:
//  - Prediction per channel. Each column (plane p, channel c) is coded as it is, or as the
//    difference from the previous token's code in that column, whichever a count over sampled
//    rows says is smaller. K's low-frequency RoPE channels turn slowly from token to token, so
//    their differences are small; V and the fast-turning K channels are better left alone.
//  - One code for every column, over quotients. A value v becomes the symbol u = v >> k, coded
//    with huff's byte-plane coder (huffman_plane.h), and its low k bits, stored apart at a fixed
//    width; one k per stream, chosen by cost from a sample. The low bits of a quantised code are
//    near-uniform, so this loses little against coding v itself, keeps the alphabet at 64
//    symbols whatever the codes' range, and leaves the Huffman stream short symbols that decode
//    two to a lookup. Values with u >= 63 are escaped.
// On ../shared/kv FP16 at bounded(cos=0.9999,rel_mae=0.01) this beats planes+zstd(1) in ratio
// (docs/CODEC_NOTES.md) at several times its speed.
// Layout: docs/FORMAT.md#qhuff-id-30.
#include <algorithm>
#include <array>
#include <cmath>
#include <memory>

#include "core/kvcomp/internal/status_macros.h"
#include "core/kvcomp/internal/vector_clones.h"
#include "core/kvcomp/registry.h"
#include "core/kvcomp/stage_ids.h"
#include "core/kvcomp/stages/huffman_codes.h"
#include "core/kvcomp/stages/huffman_plane.h"
#include "core/kvcomp/stages/qhuff_split.h"
#include "core/kvcomp/stages/stage_util.h"

namespace kvcomp {
namespace {

using namespace stage_util;

constexpr int kSymbols = 64;
constexpr int kEscape = qhuff::kEscape;
static_assert(kEscape == kSymbols - 1);
constexpr uint8_t kModeRaw = 0, kModeCoded = 2;
constexpr uint8_t kFlagPredict = 1;
// Rows sampled when choosing the columns to predict, and the share of a large stream whose
// histogram chooses k and the code.
constexpr uint64_t kPredictSampleRows = 256;
constexpr size_t kSampledStream = size_t{1} << 16;
// Elements per chunk of the passes after the histogram (a multiple of qhuff::kSlice, and of 32
// for the AVX-512 split): residuals, symbols and low bits of one chunk stay in L1 and L2.
constexpr size_t kChunk = 8192;

template <typename T>
constexpr int kWidth = 8 * sizeof(T);

template <typename T>
inline T UnZz(T u) {
  return static_cast<T>((u >> 1) ^ static_cast<T>(0 - (u & 1)));
}
template <typename T>
inline T Zz(T s) {
  return static_cast<T>(static_cast<T>(s << 1) ^ static_cast<T>(0 - (s >> (kWidth<T> - 1))));
}

// Sums over the sampled rows t >= 1 (every step-th) of each column's values as they are and of
// their differences from the row above.
template <typename T>
[[gnu::always_inline]] inline void ColumnSums(const T* x, size_t n, const Geometry& g,
                                              uint64_t step, uint64_t* plain, uint64_t* delta) {
  const size_t cols = g.cols;
  for (uint64_t p = 0; p < g.planes; ++p) {
    uint64_t* sp = plain + p * cols;
    uint64_t* sd = delta + p * cols;
    for (uint64_t t = 1; t < g.rows; t += step) {
      const uint64_t base = (p * g.rows + t) * cols;
      if (base >= n) break;
      const size_t w = static_cast<size_t>(std::min<uint64_t>(cols, n - base));
      const T* a = x + base;
      const T* b = a - cols;
      for (size_t c = 0; c < w; ++c) {
        sp[c] += a[c];
        sd[c] += Zz<T>(static_cast<T>(UnZz(a[c]) - UnZz(b[c])));
      }
    }
  }
}

// Prediction over elements [begin, end) of `in` (the whole stream), a row span at a time, into
// out (element begin's place). Forward: out[i - begin] = x_i,
// or in a predicted column below a plane's first row, zz(unzz(x_i) - unzz(x_(i - cols))).
// Inverse, in place: x_i = zz(unzz(x_i) + unzz(x_(i - cols))), the row above already rebuilt.
// Ranges let the coder work in chunks that stay in cache: residuals made a chunk at a time and
// split at once, never a stream-sized buffer written and read back. `in` points at element
// `begin`, and the row before it is readable there (in[-cols .. -1]).
template <bool kInverse, typename T>
[[gnu::always_inline]] inline void PredictRange(const T* in, const Geometry& g, const T* mask,
                                                size_t begin, size_t end, T* out) {
  const uint64_t cols = g.cols;
  // Row t of plane p, from column c0: divided out once, then stepped (rows of head_dim 8 are
  // 8 elements, beside which two divisions a row cost more than the row).
  const uint64_t first_row = begin / cols;
  uint64_t c0 = begin - first_row * cols, t = first_row % g.rows, p = first_row / g.rows;
  for (size_t i = begin; i < end;) {
    const size_t w = static_cast<size_t>(std::min<uint64_t>(cols - c0, end - i));
    const T* a = in + (i - begin);
    T* o = out + (i - begin);
    if (t == 0 || p >= g.planes) {  // a plane's first row, or past the geometry: as it is
      if (!kInverse) std::copy(a, a + w, o);
    } else {
      const T* b = (kInverse ? static_cast<const T*>(out) + (i - begin) : a) - cols;
      const T* m = mask + p * cols + c0;
      for (size_t c = 0; c < w; ++c) {
        const T prev = UnZz(b[c]) & m[c];
        o[c] = Zz<T>(static_cast<T>(kInverse ? UnZz(a[c]) + prev : UnZz(a[c]) - prev));
      }
    }
    i += w;
    c0 = 0;
    if (++t == g.rows) t = 0, ++p;
  }
}

// The sum: per-lane partial sums in 32 bits over chunks short enough not to overflow, so that
// the loop vectorises.
template <typename T>
[[gnu::always_inline]] inline uint64_t Sum(const T* v, size_t n) {
  constexpr size_t kLanes = 16, kChunk = 4096;  // 256 values of at most 2^16 per lane
  uint64_t total = 0;
  for (size_t base = 0; base < n; base += kChunk) {
    const size_t len = std::min(kChunk, n - base);
    const T* c = v + base;
    uint32_t s[kLanes] = {};
    size_t i = 0;
    for (; i + kLanes <= len; i += kLanes) {
      for (size_t k = 0; k < kLanes; ++k) s[k] += c[i + k];
    }
    for (; i < len; ++i) s[0] += c[i];
    for (size_t k = 0; k < kLanes; ++k) total += s[k];
  }
  return total;
}

// The passes over every value, compiled for the CPU's widest vectors (vector_clones.h), one
// overload per element type (multiversioned functions cannot be templates in Clang).
#define KV_QHUFF_PASSES(T)                                                                         \
  KV_VECTOR_CLONES void ColumnSumsOf(const T* x, size_t n, const Geometry& g, uint64_t step,       \
                                     uint64_t* plain, uint64_t* delta) {                           \
    ColumnSums(x, n, g, step, plain, delta);                                                       \
  }                                                                                                \
  KV_VECTOR_CLONES void PredictForward(const T* x, const Geometry& g, const T* mask, size_t begin, \
                                       size_t end, T* out) {                                       \
    PredictRange<false>(x + begin, g, mask, begin, end, out);                                      \
  }                                                                                                \
  KV_VECTOR_CLONES void PredictInverse(T* at, const Geometry& g, const T* mask, size_t begin,      \
                                       size_t end) {                                               \
    PredictRange<true>(at, g, mask, begin, end, at);                                               \
  }                                                                                                \
  KV_VECTOR_CLONES uint64_t SumOf(const T* v, size_t n) { return Sum(v, n); }
KV_QHUFF_PASSES(uint8_t)
KV_QHUFF_PASSES(uint16_t)
#undef KV_QHUFF_PASSES

// The column masks: all ones for a predicted column, zero for one coded as it is. Empty when
// no column is predicted.
template <typename T>
std::vector<T> ChoosePrediction(const T* x, size_t n, const Geometry& g) {
  if (g.rows < 2 || g.cols == 0) return {};
  std::vector<uint64_t> plain(g.planes * g.cols), delta(g.planes * g.cols);
  ColumnSumsOf(x, n, g, std::max<uint64_t>(1, g.rows / kPredictSampleRows), plain.data(),
               delta.data());
  std::vector<T> mask(plain.size());
  bool any = false;
  for (size_t j = 0; j < mask.size(); ++j) {
    mask[j] = delta[j] < plain[j] ? static_cast<T>(~T{0}) : T{0};
    any |= mask[j] != 0;
  }
  if (!any) mask.clear();
  return mask;
}

// fn(start, m) for 64 evenly spaced chunks covering 1/frac of n values (all of them when
// frac is 1).
template <typename Fn>
void ForSampleChunks(size_t n, size_t frac, Fn fn) {
  if (frac <= 1) return fn(size_t{0}, n);
  const size_t chunk = std::max<size_t>(1, n / (64 * frac));
  for (size_t c = 0; c < 64; ++c) {
    const size_t start = n / 64 * c;
    fn(start, std::min(chunk, n - start));
  }
}

// The symbol counts for k = shift + d from the histogram of min(v >> shift, 255): bins >= 255
// hold v >= 255 << shift, whose quotients at every d <= 2 are escapes too.
void SymbolCounts(const uint64_t hist[256], int d, uint64_t freq[256]) {
  std::fill(freq, freq + 256, 0);
  for (int b = 0; b < 256; ++b) freq[std::min(b >> d, kEscape)] += hist[b];
}

double CodedBits(const uint64_t freq[256], int k, int width) {
  double total = 0, bits = 0;
  for (int s = 0; s < kSymbols; ++s) total += static_cast<double>(freq[s]);
  for (int s = 0; s < kSymbols; ++s) {
    if (!freq[s]) continue;
    const double f = static_cast<double>(freq[s]);
    bits += f * (-std::log2(f / total) + (s == kEscape ? width : k));
  }
  return bits;
}

// The largest symbol.
[[gnu::always_inline]] inline uint8_t MaxSymbol(const uint8_t* sym, size_t n) {
  constexpr size_t kLanes = 32;
  uint8_t top[kLanes] = {};
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (size_t j = 0; j < kLanes; ++j) top[j] = sym[i + j] > top[j] ? sym[i + j] : top[j];
  }
  for (; i < n; ++i) top[0] = std::max(top[0], sym[i]);
  return *std::max_element(top, top + kLanes);
}

KV_VECTOR_CLONES uint8_t MaxSymbolOf(const uint8_t* sym, size_t n) { return MaxSymbol(sym, n); }

template <typename T>
void PutLittleEndian(T v, std::vector<uint8_t>* out) {
  for (size_t b = 0; b < sizeof(T); ++b) out->push_back(static_cast<uint8_t>(v >> (8 * b)));
}

template <typename T>
void PutRaw(const T* v, size_t n, std::vector<uint8_t>* out) {
  out->push_back(kModeRaw);
  for (size_t i = 0; i < n; ++i) PutLittleEndian(v[i], out);
}

template <typename T>
void EncodeStream(const T* x, size_t n, const Geometry& g, std::vector<uint8_t>* out) {
  const size_t at = out->size();
  const std::vector<T> mask = ChoosePrediction(x, n, g);
  // The values coded: x, or its residuals where columns are predicted, made a chunk at a time.
  std::unique_ptr<T[]> chunk;
  const auto values = [&](size_t start, size_t m) -> const T* {
    if (mask.empty()) return x + start;
    if (!chunk) chunk.reset(new T[std::min(n, kChunk)]);
    PredictForward(x, g, mask.data(), start, start + m, chunk.get());
    return chunk.get();
  };
  // k: about log2 of the mean, less 2 (quotients of mean 4 to 8), then the cheapest of that and
  // its neighbours on the histogram of the same sample: the whole stream when it is small.
  const size_t frac = n >= kSampledStream ? 16 : 1;
  std::vector<T> sample;
  if (frac > 1 || !mask.empty()) {
    ForSampleChunks(n, frac, [&](size_t start, size_t m) {
      for (size_t c = 0; c < m; c += kChunk) {
        const size_t len = std::min(kChunk, m - c);
        const T* v = values(start + c, len);
        sample.insert(sample.end(), v, v + len);
      }
    });
  }
  const T* sampled = sample.empty() ? x : sample.data();
  const size_t counted = sample.empty() ? n : sample.size();
  const uint64_t sum = SumOf(sampled, counted);
  const double mean = static_cast<double>(sum) / static_cast<double>(counted);
  const int guess =
      std::clamp(static_cast<int>(std::floor(std::log2(mean + 1))) - 2, 0, kWidth<T> - 1);
  const int lo = std::max(0, guess - 1), hi = std::min(kWidth<T> - 1, guess + 1);
  uint64_t seg_hist[4][256], hist[256];
  // Quotients counted per segment of the symbol plane's code (huffman::Segments): when the
  // sample is the whole stream, their counts at the chosen k are the plane's own, which huffman
  // then need not take again (two counts had been a quarter of compressing a 32 KiB
  // Llama-shaped block).
  huffman::SegmentHistograms(
      counted, [sampled, lo](size_t i) { return std::min<uint32_t>(sampled[i] >> lo, 255); },
      seg_hist);
  for (int b = 0; b < 256; ++b) {
    hist[b] = seg_hist[0][b] + seg_hist[1][b] + seg_hist[2][b] + seg_hist[3][b];
  }
  int k = lo;
  double best = 0;
  for (int c = lo; c <= hi; ++c) {
    uint64_t freq[256];
    SymbolCounts(hist, c - lo, freq);
    const double bits = CodedBits(freq, c, kWidth<T>);
    if (c == lo || bits < best) best = bits, k = c;
  }

  out->push_back(kModeCoded);
  out->push_back(mask.empty() ? 0 : kFlagPredict);
  if (!mask.empty()) {
    const size_t bits_at = out->size();
    out->resize(bits_at + (mask.size() + 7) / 8, 0);
    for (size_t j = 0; j < mask.size(); ++j) {
      if (mask[j]) (*out)[bits_at + j / 8] |= static_cast<uint8_t>(1 << (j % 8));
    }
  }
  out->push_back(static_cast<uint8_t>(k));
  std::unique_ptr<uint8_t[]> sym(new uint8_t[n]);
  const size_t low_bytes = qhuff::SlicedBytes(n, k);
  std::unique_ptr<uint8_t[]> low(new uint8_t[low_bytes]);
  std::vector<T> escapes;
  if (frac == 1) {  // the sample holds every value, and its counts are the plane's
    qhuff::Split(sampled, n, k, sym.get(), low.get(), &escapes);
    uint64_t seg_freq[4][256];
    for (int g = 0; g < 4; ++g) SymbolCounts(seg_hist[g], k - lo, seg_freq[g]);
    huffman::EncodeCountedPlane(sym.get(), n, seg_freq, out);
  } else {
    for (size_t start = 0; start < n; start += kChunk) {
      const size_t m = std::min(kChunk, n - start);
      qhuff::Split(values(start, m), m, k, sym.get() + start,
                   low.get() + start / qhuff::kSlice * 2 * static_cast<size_t>(k), &escapes);
    }
    huffman::EncodePlane(sym.get(), 1, n, true, out);
  }
  out->insert(out->end(), low.get(), low.get() + low_bytes);
  for (const T e : escapes) PutLittleEndian(e, out);
  if (out->size() - at >= 1 + n * sizeof(T)) {  // no smaller than raw
    out->resize(at);
    PutRaw(x, n, out);
  }
}

// Where a decoder rebuilds each chunk of a stream: in place in the whole stream `out`, or, when
// streaming (Stage::DecodeStreaming) with no whole stream to keep, in a buffer holding one chunk
// after the row before it, all that the inverse prediction reads. A row longer than a chunk
// would make that buffer as large as the stream, which is then made whole after all.
template <typename T>
class ChunkPlace {
 public:
  ChunkPlace(T* out, size_t n, uint64_t cols) : out_(out) {
    if (out_ != nullptr) return;
    if (cols > kChunk) {
      own_.reset(new T[n]);
      out_ = own_.get();
      return;
    }
    row_ = static_cast<size_t>(cols);
    own_.reset(new T[row_ + kChunk]);
  }
  T* At(size_t start) { return out_ ? out_ + start : own_.get() + row_; }
  // After the chunk of m elements at At(start): its last row moves before the next chunk.
  void Done(size_t m) {
    if (out_ == nullptr && m >= row_) std::memcpy(own_.get(), own_.get() + m, row_ * sizeof(T));
  }

 private:
  T* out_;
  size_t row_ = 0;
  std::unique_ptr<T[]> own_;
};

// Decodes n elements into `out`, or, with `sink`, hands each finished chunk to it and keeps
// the whole stream only when `out` is given.
template <typename T>
absl::Status DecodeStream(ByteReader* br, size_t n, const Geometry& g, T* out,
                          const Stage::ChunkSink* sink) {
  ChunkPlace<T> place(out, n, g.cols);
  const auto done = [&](size_t start, size_t m, const T* at) {
    if (sink) (*sink)(start, m, reinterpret_cast<const uint8_t*>(at));
    place.Done(m);
  };
  uint8_t mode;
  if (!br->U8(&mode)) return Corrupt("qhuff", "truncated stream");
  if (mode == kModeRaw) {
    absl::Span<const uint8_t> raw;
    if (!br->Bytes(n * sizeof(T), &raw)) return Corrupt("qhuff", "truncated raw stream");
    for (size_t start = 0; start < n; start += kChunk) {
      const size_t m = std::min(kChunk, n - start);
      T* const at = place.At(start);
      for (size_t i = 0; i < m; ++i) {
        T v = 0;
        for (size_t b = 0; b < sizeof(T); ++b) {
          v |= static_cast<T>(raw[(start + i) * sizeof(T) + b] << (8 * b));
        }
        at[i] = v;
      }
      done(start, m, at);
    }
    return absl::OkStatus();
  }
  if (mode != kModeCoded) return Corrupt("qhuff", "unknown mode");
  uint8_t flags, k;
  if (!br->U8(&flags) || (flags & ~kFlagPredict)) return Corrupt("qhuff", "bad flags");
  std::vector<T> mask;
  if (flags & kFlagPredict) {
    if (g.rows < 2) return Corrupt("qhuff", "prediction in a stream of one row");
    absl::Span<const uint8_t> bits;
    const uint64_t columns = g.planes * g.cols;
    if (!br->Bytes((columns + 7) / 8, &bits)) return Corrupt("qhuff", "truncated prediction map");
    mask.resize(columns);
    for (size_t j = 0; j < columns; ++j) {
      mask[j] = (bits[j / 8] >> (j % 8)) & 1 ? static_cast<T>(~T{0}) : T{0};
    }
  }
  if (!br->U8(&k) || k >= kWidth<T>) return Corrupt("qhuff", "bad shift");
  std::unique_ptr<uint8_t[]> scratch(new uint8_t[n]);
  const uint8_t* sym = nullptr;
  uint8_t bound;  // at least every symbol: a code's symbols need no check, a raw plane's do
  KV_RETURN_IF_ERROR(huffman::DecodePlane("qhuff", br, n, scratch.get(), &sym, &bound));
  absl::Span<const uint8_t> low;
  if (!br->Bytes(qhuff::SlicedBytes(n, k), &low)) return Corrupt("qhuff", "truncated low bits");
  // Symbols are at most 63, and u << k must fit the element. Both hold for every symbol when the
  // plane's bound allows (a code without symbols above 63; k <= W - 6): the symbols are looked at
  // only when it does not.
  const bool check_range = bound > kEscape;
  const bool check_shift = (std::min<uint32_t>(bound, kEscape) << k) >> kWidth<T> != 0;
  // A chunk at a time, each finished while it is in cache: checks, values, escapes, prediction.
  for (size_t start = 0; start < n; start += kChunk) {
    const size_t m = std::min(kChunk, n - start);
    const uint8_t* const s = sym + start;
    bool bad = check_range && MaxSymbolOf(s, m) > kEscape;
    for (size_t i = 0; !bad && check_shift && i < m; ++i) {
      bad = s[i] != kEscape && (uint32_t{s[i]} << k) >> kWidth<T> != 0;
    }
    if (bad) return Corrupt("qhuff", "symbol out of range for its shift");
    T* const at = place.At(start);
    qhuff::Unslice(s, low.data() + start / qhuff::kSlice * 2 * size_t{k}, m, k, at);
    // Escapes (rare) in element order, found with memchr.
    for (const uint8_t* e = s;
         (e = static_cast<const uint8_t*>(std::memchr(e, kEscape, static_cast<size_t>(s + m - e))));
         ++e) {
      absl::Span<const uint8_t> esc;
      if (!br->Bytes(sizeof(T), &esc)) return Corrupt("qhuff", "truncated escapes");
      T v = 0;
      for (size_t b = 0; b < sizeof(T); ++b) v |= static_cast<T>(esc[b] << (8 * b));
      at[e - s] = v;
    }
    if (!mask.empty()) PredictInverse(at, g, mask.data(), start, start + m);
    done(start, m, at);
  }
  return absl::OkStatus();
}

class QhuffStage final : public Stage {
 public:
  using Stage::Stage;

  absl::StatusOr<std::vector<StreamDesc>> Plan(absl::Span<const StreamDesc> in) const override {
    return AllOpaque(in);
  }

  absl::Status DoEncode(const Streams& in, Streams* out) const override {
    EncodeTrimmed(in, out, [](const Stream& s, size_t n, std::vector<uint8_t>* buf) {
      const size_t es = ElemSize(s.desc().type);
      if (n == 0) return;
      if (es == 2) {
        EncodeTyped<uint16_t>(s.data(), n, s.desc().geom, buf);
      } else if (es == 1) {
        EncodeTyped<uint8_t>(s.data(), n, s.desc().geom, buf);
      } else {
        buf->push_back(kModeRaw);
        buf->insert(buf->end(), s.data().begin(), s.data().begin() + n * es);
      }
    });
    return absl::OkStatus();
  }

  absl::Status DoDecode(const Streams& encoded, absl::Span<const StreamDesc> want,
                        absl::Span<uint8_t> into, Streams* decoded) const override {
    return DecodeTrimmed(
        "qhuff", encoded, want, into, decoded,
        [](ByteReader* br, size_t n, const StreamDesc& d, uint8_t* out) -> absl::Status {
          const size_t es = ElemSize(d.type);
          if (n == 0) return absl::OkStatus();
          if (es == 2) {
            return DecodeStream(br, n, d.geom, reinterpret_cast<uint16_t*>(out), nullptr);
          }
          if (es == 1) return DecodeStream(br, n, d.geom, out, nullptr);
          uint8_t mode;
          absl::Span<const uint8_t> raw;
          if (!br->U8(&mode) || mode != kModeRaw || !br->Bytes(n * es, &raw)) {
            return Corrupt("qhuff", "bad raw stream");
          }
          std::memcpy(out, raw.data(), raw.size());
          return absl::OkStatus();
        });
  }

  // One stream of 1- or 2-byte elements: its chunks go to `sink` as they are finished, then its
  // zero tail, and no stream-sized buffer is made (DecodeTrimmed's framing, see stage_util.h).
  absl::Status DecodeStreaming(const Streams& encoded, absl::Span<const StreamDesc> want,
                               const ChunkSink& sink, Streams* decoded) const override {
    const size_t es = want.size() == 1 ? ElemSize(want[0].type) : 0;
    if (want.size() != 1 || want[0].opaque() || (es != 1 && es != 2)) {
      return Stage::DecodeStreaming(encoded, want, sink, decoded);
    }
    ByteReader br(encoded[0].data());
    const Geometry& g = want[0].geom;
    uint64_t n;
    if (!br.Varint(&n) || n > g.size()) return Corrupt("qhuff", "element count");
    if (n > 0) {
      KV_RETURN_IF_ERROR(es == 2 ? DecodeStream<uint16_t>(&br, n, g, nullptr, &sink)
                                 : DecodeStream<uint8_t>(&br, n, g, nullptr, &sink));
    }
    if (br.remaining() != 0) return Corrupt("qhuff", "trailing bytes");
    static constexpr uint8_t kZeros[4096] = {};
    for (size_t i = n; i < g.size(); i += sizeof kZeros / es) {
      sink(i, std::min<size_t>(sizeof kZeros / es, g.size() - i), kZeros);
    }
    return absl::OkStatus();
  }

 private:
  template <typename T>
  static void EncodeTyped(absl::Span<const uint8_t> bytes, size_t n, const Geometry& g,
                          std::vector<uint8_t>* out) {
    // A borrowed input (the caller's tensor) may sit at any address; the coder reads words.
    std::vector<T> aligned;
    const T* x = reinterpret_cast<const T*>(bytes.data());
    if (reinterpret_cast<uintptr_t>(bytes.data()) % alignof(T) != 0) {
      aligned.resize(n);
      std::memcpy(aligned.data(), bytes.data(), n * sizeof(T));
      x = aligned.data();
    }
    EncodeStream(x, n, g, out);
  }
};

}  // namespace

void RegisterQhuffStage(StageRegistry& r) {
  r.Register(StageInfo{
      .id = stage_id::kQhuff,
      .name = "qhuff",
      .summary = "Huffman for quantised codes: per-channel token prediction, quotient codes with "
                 "raw low bits, 4 interleaved streams",
      .lossless = true,
      .params = {},
      .make = MakeStage<QhuffStage>,
  });
}

}  // namespace kvcomp

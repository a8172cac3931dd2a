// rans: static (two-pass) rANS per byte plane, with context modelling. Each typed stream is
// coded plane by plane, most significant byte first, straight from and into the interleaved
// words. The coder: 32-bit states, quantised frequencies summing to 2^sb (sb = 8..12, chosen
// per plane), byte-wise renormalisation, 8 interleaved states (element i uses state i mod 8),
// encoded backwards. Every table is stored in the stream, so its cost is in the ratio.
//
// Contexts, chosen per plane at encode time by the smallest total size, tables included:
//  - channel groups (neighbouring channels share a table), for the most significant byte
//    (gear's u8 sign+exponent stream is all of it);
//  - top byte (the element's most significant byte, already decoded, picks the table), for the
//    other planes, e.g. the FP16 low mantissa byte conditioned on sign+exponent.
// Tables are sent as 5-bit log-scale codes (half-bit steps) and normalised identically by
// both sides, which costs less than explicit frequencies on small tensors.
// Layout: docs/FORMAT.md#rans-id-27.
#include <algorithm>
#include <array>
#include <cmath>

#include "core/kvcomp/registry.h"
#include "core/kvcomp/stage_ids.h"
#include "core/kvcomp/stages/byte_planes.h"

namespace kvcomp {
namespace {

using namespace stage_util;

// Frequencies sum to 2^sb, sb (scale bits) chosen per plane in [kMinScaleBits, kMaxScaleBits]:
// small planes with many contexts get smaller tables (cheaper to build when decoding).
constexpr int kMinScaleBits = 8;
constexpr int kMaxScaleBits = 12;
constexpr uint32_t kMaxScale = 1u << kMaxScaleBits;
constexpr int kMaxTableBits = 15;  // encoder only: decode tables of one plane, log2 entries
constexpr uint32_t kRansL = 1u << 23;
constexpr int kStates = 8;  // interleaved; element i uses state i mod kStates
constexpr int kMaxLogK = 6;
constexpr int kMaxK = 1 << kMaxLogK;
constexpr int kCodeBits = 5;
constexpr int kMaxCode = (1 << kCodeBits) - 1;
// w(c) = round(2^((c + 1) / 2)), c = 1..31 (index 0 unused).
constexpr uint32_t kWeight[32] = {0,    2,    3,     4,     6,     8,     11,    16,
                                  23,   32,   45,    64,    91,    128,   181,   256,
                                  362,  512,  724,   1024,  1448,  2048,  2896,  4096,
                                  5793, 8192, 11585, 16384, 23170, 32768, 46341, 65536};

constexpr uint8_t kRans = 2;  // after byte_planes.h's raw (0) and constant (1)
enum Kind : uint8_t { kChannel = 0, kTopByte = 1 };

// Frequencies from codes, as the format defines them (symbols outside [lo, hi] have code 0
// and are left untouched). False when no symbol is present.
bool Normalize(const uint8_t code[256], int lo, int hi, int sb, uint32_t freq[256]) {
  const uint32_t scale = 1u << sb;
  uint64_t total_w = 0;
  int best = -1;
  for (int s = lo; s <= hi; ++s) {
    if (!code[s]) continue;
    total_w += kWeight[code[s]];
    if (best < 0 || code[s] > code[best]) best = s;
  }
  if (best < 0) return false;
  int64_t total = 0;
  for (int s = lo; s <= hi; ++s) {
    freq[s] = code[s] ? static_cast<uint32_t>(
                            std::max<uint64_t>(1, uint64_t{kWeight[code[s]]} * scale / total_w))
                      : 0;
    total += freq[s];
  }
  int64_t d = total - scale;
  if (d < 0 || static_cast<int64_t>(freq[best]) > d) {
    freq[best] = static_cast<uint32_t>(freq[best] - d);
    return true;
  }
  while (d > 0) {
    for (int s = lo; s <= hi && d > 0; ++s) {
      if (freq[s] > 1) --freq[s], --d;
    }
  }
  return true;
}

// ---- contexts ----

// Channel-group context of the first n elements, K = 2^v groups; `remap` (decoder: context ->
// table index) may be null.
void ChannelContext(const Geometry& g, size_t n, int v, const uint8_t* remap, uint8_t* ctx) {
  const uint64_t c_total = g.channels();
  std::vector<uint8_t> row(g.cols);
  size_t i = 0;
  for (uint64_t p = 0; p < g.planes && i < n; ++p) {
    for (uint64_t c = 0; c < g.cols; ++c) {
      const uint8_t t = static_cast<uint8_t>(((p * g.cols + c) << v) / c_total);
      row[c] = remap ? remap[t] : t;
    }
    for (uint64_t r = 0; r < g.rows && i < n; ++r) {
      const size_t m = static_cast<size_t>(std::min<uint64_t>(g.cols, n - i));
      std::memcpy(ctx + i, row.data(), m);
      i += m;
    }
  }
}

// Top-byte context: top_i >> (8 - v).
void TopByteContext(const uint8_t* top, size_t stride, size_t n, int v, const uint8_t* remap,
                    uint8_t* ctx) {
  const int sh = 8 - v;
  if (!remap) {
    for (size_t i = 0; i < n; ++i) ctx[i] = static_cast<uint8_t>(top[i * stride] >> sh);
    return;
  }
  for (size_t i = 0; i < n; ++i) ctx[i] = remap[top[i * stride] >> sh];
}

// ---- encoder ----

struct EncSym {
  uint32_t x_max, rcp_freq, bias, cmpl_freq, rcp_shift;
};

void InitEncSym(EncSym* e, uint32_t start, uint32_t freq, int sb) {
  e->x_max = ((kRansL >> sb) << 8) * freq;
  e->cmpl_freq = (1u << sb) - freq;
  if (freq < 2) {
    e->rcp_freq = ~0u;
    e->rcp_shift = 0;
    e->bias = start + (1u << sb) - 1;
  } else {
    uint32_t shift = 0;
    while (freq > (1u << shift)) ++shift;
    e->rcp_freq = static_cast<uint32_t>(((uint64_t{1} << (shift + 31)) + freq - 1) / freq);
    e->rcp_shift = shift - 1;
    e->bias = start;
  }
}

// Branch-free renormalisation: a state emits at most 2 bytes per symbol. Both bytes are
// stored; only the emitted ones are kept (the buffer has room below the output).
inline void Put(uint32_t* x, uint8_t** p, const EncSym& s) {
  uint32_t v = *x;
  const uint32_t n1 = v >= s.x_max;
  const uint32_t n2 = uint64_t{v} >= (uint64_t{s.x_max} << 8);
  uint8_t* q = *p;
  q[-1] = static_cast<uint8_t>(v);
  q[-2] = static_cast<uint8_t>(v >> 8);
  *p = q - (n1 + n2);
  v = static_cast<uint32_t>(uint64_t{v} >> (8 * (n1 + n2)));
  const uint32_t qt = static_cast<uint32_t>((uint64_t{v} * s.rcp_freq) >> 32) >> s.rcp_shift;
  *x = v + s.bias + qt * s.cmpl_freq;
}

// Codes elements backwards into the buffer ending at `end`; returns the start (the states
// first). `syms` holds 256 entries per context.
template <bool kCtx, size_t kStride>
uint8_t* RansEncode(const uint8_t* base, size_t n, const uint8_t* ctx, const EncSym* syms,
                    uint8_t* end) {
  uint32_t x[kStates];
  for (int k = 0; k < kStates; ++k) x[k] = kRansL;
  uint8_t* p = end;
  auto sym = [&](size_t i) -> const EncSym& {
    return syms[(kCtx ? size_t{ctx[i]} << 8 : 0) + base[i * kStride]];
  };
  const size_t body = n & ~size_t{kStates - 1};
  for (size_t i = n; i-- > body;) Put(&x[i & (kStates - 1)], &p, sym(i));
  for (size_t i = body; i > 0;) {
    i -= kStates;
#pragma GCC unroll 8
    for (int k = kStates - 1; k >= 0; --k) Put(&x[k], &p, sym(i + k));
  }
  p -= 4 * kStates;
  for (int k = 0; k < kStates; ++k) Store32(p + 4 * k, x[k]);
  return p;
}

template <bool kCtx>
uint8_t* RansEncodeStride(const uint8_t* base, size_t stride, size_t n, const uint8_t* ctx,
                          const EncSym* syms, uint8_t* end) {
  switch (stride) {
    case 1:
      return RansEncode<kCtx, 1>(base, n, ctx, syms, end);
    case 2:
      return RansEncode<kCtx, 2>(base, n, ctx, syms, end);
    default:
      return RansEncode<kCtx, 4>(base, n, ctx, syms, end);
  }
}

struct Log2Table {
  double v[kMaxScale + 1];
  Log2Table() {
    v[0] = 0;
    for (uint32_t f = 1; f <= kMaxScale; ++f) v[f] = std::log2(static_cast<double>(f));
  }
};
const Log2Table& L2() {
  static const Log2Table t;
  return t;
}

// log2(x) for x >= 1 to within 0.006 (encoder decisions only, never part of the format).
struct FracLog2 {
  float v[257];
  FracLog2() {
    for (int i = 0; i <= 256; ++i) v[i] = static_cast<float>(std::log2(1.0 + i / 256.0));
  }
};
inline float FastLog2(uint32_t x) {
  static const FracLog2 t;
  const int e = 31 - __builtin_clz(x);
  const uint32_t m = e >= 8 ? (x >> (e - 8)) & 255 : (x << (8 - e)) & 255;
  return static_cast<float>(e) + t.v[m];
}

// The tables of one candidate context choice; code[t] and freq[t] are valid on [lo[t], hi[t]]
// (lo[t] < 0: table t is absent).
struct Model {
  uint8_t code[kMaxK][256];
  uint32_t freq[kMaxK][256];
  int lo[kMaxK], hi[kMaxK];
};

// Chooses codes for histogram `h` as table t of `m`; returns the cost in bits (table + coded
// data).
double PlanTable(const uint32_t h[256], int sb, int t, Model* m) {
  int lo = 0, hi = 255;
  while (lo < 256 && !h[lo]) ++lo;
  if (lo == 256) {
    m->lo[t] = -1;
    return 1;
  }
  while (!h[hi]) --hi;
  m->lo[t] = lo;
  m->hi[t] = hi;
  uint8_t* code = m->code[t];
  uint32_t hmax = 0;
  for (int s = lo; s <= hi; ++s) hmax = std::max(hmax, h[s]);
  const float lmax = FastLog2(hmax);
  for (int s = lo; s <= hi; ++s) {
    code[s] = 0;
    if (!h[s]) continue;
    const int c = kMaxCode - static_cast<int>(2 * (lmax - FastLog2(h[s])) + 0.5f);
    code[s] = static_cast<uint8_t>(std::max(1, c));
  }
  Normalize(code, lo, hi, sb, m->freq[t]);
  const Log2Table& l2 = L2();
  double bits = 1 + 16 + kCodeBits * (hi - lo + 1);
  for (int s = lo; s <= hi; ++s) {
    if (h[s]) bits += h[s] * (sb - l2.v[m->freq[t][s]]);
  }
  return bits;
}

void WriteTables(const Model& m, int k, std::vector<uint8_t>* out) {
  BitWriter bw(out);
  for (int t = 0; t < k; ++t) {
    if (m.lo[t] < 0) {
      bw.Put(0, 1);
      continue;
    }
    bw.Put(1, 1);
    bw.Put(m.lo[t], 8);
    bw.Put(m.hi[t] - m.lo[t], 8);
    for (int s = m.lo[t]; s <= m.hi[t]; ++s) bw.Put(m.code[t][s], kCodeBits);
  }
}

struct Histograms {
  uint32_t h[kMaxK][256];
};

// Per-context histograms of the plane; ctx == nullptr means one context.
void Histogram(const uint8_t* base, size_t stride, size_t n, const uint8_t* ctx, Histograms* hs) {
  std::memset(hs, 0, sizeof(Histograms));
  if (!ctx) {
    uint32_t h[4][256] = {};
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
      ++h[0][base[i * stride]];
      ++h[1][base[(i + 1) * stride]];
      ++h[2][base[(i + 2) * stride]];
      ++h[3][base[(i + 3) * stride]];
    }
    for (; i < n; ++i) ++h[0][base[i * stride]];
    for (int s = 0; s < 256; ++s) hs->h[0][s] = h[0][s] + h[1][s] + h[2][s] + h[3][s];
    return;
  }
  for (size_t i = 0; i < n; ++i) ++hs->h[ctx[i]][base[i * stride]];
}

// Cost in bits of coding with the 2^v contexts of `hs`; fills codes and frequencies.
double CostAt(const uint32_t (*h)[256], int v, int sb, Model* m) {
  double bits = 0;
  for (int t = 0; t < (1 << v); ++t) bits += PlanTable(h[t], sb, t, m);
  return bits;
}

// Histograms of every context level: level v (2^v contexts) at tables [2^v - 1, 2^(v+1) - 1);
// context t of level v merges contexts 2t and 2t + 1 of level v + 1.
struct Levels {
  uint32_t h[2 * kMaxK][256];
  uint32_t (*level(int v))[256] { return h + (1 << v) - 1; }
};

void BuildLevels(const Histograms& fine, int fine_v, Levels* lv) {
  std::memcpy(lv->level(fine_v), fine.h, sizeof(uint32_t) * 256 * (size_t{1} << fine_v));
  for (int v = fine_v - 1; v >= 0; --v) {
    uint32_t(*dst)[256] = lv->level(v);
    const uint32_t(*src)[256] = lv->level(v + 1);
    for (int t = 0; t < (1 << v); ++t) {
      for (int s = 0; s < 256; ++s) dst[t][s] = src[2 * t][s] + src[2 * t + 1][s];
    }
  }
}

void EncodePlane(const uint8_t* base, size_t stride, size_t n, bool top_plane, const uint8_t* top,
                 size_t top_stride, const Geometry& geom, std::vector<uint8_t>* out) {
  thread_local std::vector<uint8_t> ctx, scratch;
  thread_local std::unique_ptr<Histograms> fine;
  thread_local std::unique_ptr<Levels> levels;
  thread_local std::unique_ptr<Model> cand, chosen;
  if (!fine) {
    fine = std::make_unique<Histograms>(), levels = std::make_unique<Levels>();
    cand = std::make_unique<Model>(), chosen = std::make_unique<Model>();
  }
  if (ctx.size() < n) ctx.resize(n);

  // Finest context available for this plane.
  int fine_v = 0;
  Kind kind = kChannel;
  if (top_plane) {
    uint64_t c = geom.channels();
    while (fine_v < kMaxLogK && (uint64_t{2} << fine_v) <= c) ++fine_v;
    if (fine_v > 0) ChannelContext(geom, n, fine_v, nullptr, ctx.data());
  } else {
    kind = kTopByte;
    fine_v = kMaxLogK;
    TopByteContext(top, top_stride, n, fine_v, nullptr, ctx.data());
  }
  Histogram(base, stride, n, fine_v ? ctx.data() : nullptr, fine.get());

  double best = -1;
  int best_v = 0, best_sb = kMaxScaleBits;
  // Every level (the cost is not monotonic in v); ties go to fewer tables.
  BuildLevels(*fine, fine_v, levels.get());
  for (int v = 0; v <= fine_v; ++v) {
    // About 4 slots per element of an average context, within [8, 12] bits, and at most
    // 2^kMaxTableBits decode entries in all (they must stay in cache).
    int sb = kMinScaleBits;
    while (sb < kMaxScaleBits && sb + v < kMaxTableBits &&
           (uint64_t{1} << sb) < (uint64_t{n} >> v) * 4) {
      ++sb;
    }
    const double bits = CostAt(levels->level(v), v, sb, cand.get());
    if (best >= 0 && bits >= best) continue;
    best = bits;
    best_v = v;
    best_sb = sb;
    std::swap(cand, chosen);
  }
  // Constant plane: one symbol in the single-table histogram.
  int used = 0, last = 0;
  for (int s = 0; s < 256; ++s) {
    if (levels->h[0][s]) ++used, last = s;
  }
  if (used == 1) {
    PutConstPlane(static_cast<uint8_t>(last), out);
    return;
  }
  if (best / 8 + 4 * kStates + 8 >= static_cast<double>(n)) {
    PutRawPlane(base, stride, n, out);
    return;
  }
  const int k = 1 << best_v;
  out->push_back(kRans);
  out->push_back(static_cast<uint8_t>(best_v | (kind << 3)));
  out->push_back(static_cast<uint8_t>(best_sb));
  WriteTables(*chosen, k, out);

  thread_local std::vector<EncSym> syms;
  syms.resize(size_t{256} * k);
  for (int t = 0; t < k; ++t) {
    uint32_t cum = 0;
    for (int s = chosen->lo[t]; s >= 0 && s <= chosen->hi[t]; ++s) {
      const uint32_t f = chosen->freq[t][s];
      if (f) InitEncSym(&syms[t * 256 + s], cum, f, best_sb);
      cum += f;
    }
  }
  if (best_v > 0 && best_v != fine_v) {
    const int sh = fine_v - best_v;
    for (size_t i = 0; i < n; ++i) ctx[i] = static_cast<uint8_t>(ctx[i] >> sh);
  }
  const size_t cap = 2 * n + 8 * kStates;
  if (scratch.size() < cap) scratch.resize(cap);
  uint8_t* end = scratch.data() + cap;
  const uint8_t* start = best_v
                             ? RansEncodeStride<true>(base, stride, n, ctx.data(), syms.data(), end)
                             : RansEncodeStride<false>(base, stride, n, nullptr, syms.data(), end);
  ByteWriter(out).Varint(static_cast<uint64_t>(end - start));
  out->insert(out->end(), start, static_cast<const uint8_t*>(end));
}

// ---- decoder ----

// Decode entry for slot j: symbol | (f - 1) << 8 | cum << 20, the same for all f slots of
// a symbol (so a table is filled run by run).
void BuildDecTable(const uint32_t freq[256], int lo, int hi, uint32_t* t) {
  uint32_t cum = 0;
  for (int s = lo; s <= hi; ++s) {
    const uint32_t f = freq[s];
    if (!f) continue;
    std::fill(t + cum, t + cum + f, static_cast<uint32_t>(s) | ((f - 1) << 8) | (cum << 20));
    cum += f;
  }
}

// `tab` holds 4096 entries per table; element i uses table ctx[i] (0 without contexts).
template <bool kCtx>
bool RansDecode(const uint8_t* in, size_t len, size_t n, const uint8_t* ctx, const uint32_t* tab,
                int sb, uint8_t* out) {
  const uint32_t mask = (1u << sb) - 1;
  if (len < 4 * kStates) return false;
  uint32_t x[kStates];
  for (int k = 0; k < kStates; ++k) {
    x[k] = Load32(in + 4 * k);
    if (x[k] < kRansL || x[k] >= (1u << 31)) return false;
  }
  const uint8_t* p = in + 4 * kStates;
  const uint8_t* const end = in + len;
  auto step = [&](uint32_t& xs, size_t i) {
    const uint32_t slot = xs & mask;
    const uint32_t e = tab[kCtx ? (size_t{ctx[i]} << sb) | slot : slot];
    out[i] = static_cast<uint8_t>(e);
    xs = (((e >> 8) & 0xfff) + 1) * (xs >> sb) + slot - (e >> 20);
  };
  size_t i = 0;
  // Each step takes at most 2 bytes per state (states stay in [2^23, 2^31), so a decoded state is
  // at least 2^(23 - sb) >= 2^11 before renormalisation), so a round needs
  // at most 2 * kStates bytes: renormalise without bounds checks or branches.
  for (; i + kStates <= n && static_cast<size_t>(end - p) >= 2 * kStates; i += kStates) {
#pragma GCC unroll 8
    for (int k = 0; k < kStates; ++k) {
      uint32_t& xs = x[k];
      step(xs, i + k);
      const uint32_t n1 = xs < kRansL, n2 = xs < (kRansL >> 8);
      const uint32_t y1 = (xs << 8) | p[0], y2 = (y1 << 8) | p[1];
      xs = n2 ? y2 : n1 ? y1 : xs;
      p += n1 + n2;
    }
  }
  for (; i < n; ++i) {
    uint32_t& xs = x[i & (kStates - 1)];
    step(xs, i);
    while (xs < kRansL) {
      if (p == end) return false;
      xs = (xs << 8) | *p++;
    }
  }
  for (int k = 0; k < kStates; ++k) {
    if (x[k] != kRansL) return false;
  }
  return p == end;
}

// Decodes one plane of n bytes: *plane points at them, in `scratch` or (raw) in the input. `top` is
// the decoded top plane (a context), null while decoding the top plane itself.
absl::Status DecodePlane(ByteReader* br, size_t n, const Geometry& geom, const uint8_t* top,
                         uint8_t* scratch, const uint8_t** plane) {
  const bool top_plane = top == nullptr;
  uint8_t mode;
  if (!br->U8(&mode)) return Corrupt("rans", "truncated plane");
  if (absl::Status st; DecodePlainPlane("rans", mode, br, n, scratch, plane, &st)) return st;
  if (mode != kRans) return Corrupt("rans", "unknown plane mode");
  uint8_t cb, sb;
  if (!br->U8(&cb) || !br->U8(&sb)) return Corrupt("rans", "truncated context");
  if (sb < kMinScaleBits || sb > kMaxScaleBits) return Corrupt("rans", "bad scale");
  const size_t scale = size_t{1} << sb;
  const int v = cb & 7, kind = cb >> 3;
  if (v > kMaxLogK || kind > kTopByte || (kind == kTopByte && top_plane)) {
    return Corrupt("rans", "bad context");
  }
  const int k = 1 << v;
  // Present tables get consecutive indices; absent ones (never used by a valid stream) share
  // a dummy table after them.
  uint8_t code[kMaxK][256];
  int lo[kMaxK], hi[kMaxK];
  uint8_t remap[kMaxK];
  int present = 0;
  {
    BitReader bits(br->rest());
    for (int t = 0; t < k; ++t) {
      uint64_t flag, l, span;
      if (!bits.Get(1, &flag)) return Corrupt("rans", "truncated table");
      lo[t] = -1;
      if (!flag) continue;
      if (!bits.Get(8, &l) || !bits.Get(8, &span) || l + span > 255) {
        return Corrupt("rans", "bad table range");
      }
      lo[t] = static_cast<int>(l);
      hi[t] = static_cast<int>(l + span);
      for (int s = lo[t]; s <= hi[t]; ++s) {
        uint64_t c;
        if (!bits.Get(kCodeBits, &c)) return Corrupt("rans", "truncated table");
        code[t][s] = static_cast<uint8_t>(c);
      }
      remap[t] = static_cast<uint8_t>(present++);
    }
    absl::Span<const uint8_t> skip;
    if (!br->Bytes(bits.bytes_used(), &skip)) return Corrupt("rans", "truncated table");
  }
  if (present == 0) return Corrupt("rans", "no table");
  thread_local std::vector<uint32_t> tables;
  const bool dummy = present < k;
  tables.resize(scale * (present + dummy));
  for (int t = 0; t < k; ++t) {
    if (lo[t] < 0) {
      remap[t] = static_cast<uint8_t>(present);
      continue;
    }
    uint32_t freq[256];
    if (!Normalize(code[t], lo[t], hi[t], sb, freq)) return Corrupt("rans", "empty table");
    BuildDecTable(freq, lo[t], hi[t], tables.data() + scale * remap[t]);
  }
  if (dummy) {
    std::fill(tables.end() - scale, tables.end(), static_cast<uint32_t>(scale - 1) << 8);
  }
  uint64_t len;
  absl::Span<const uint8_t> body;
  if (!br->Varint(&len) || len > br->remaining() || !br->Bytes(len, &body)) {
    return Corrupt("rans", "truncated coded plane");
  }
  bool ok;
  *plane = scratch;
  if (v == 0) {
    ok = RansDecode<false>(body.data(), body.size(), n, nullptr, tables.data(), sb, scratch);
  } else {
    thread_local std::vector<uint8_t> ctx;
    if (ctx.size() < n) ctx.resize(n);
    if (kind == kChannel) {
      ChannelContext(geom, n, v, remap, ctx.data());
    } else {
      TopByteContext(top, 1, n, v, remap, ctx.data());
    }
    ok = RansDecode<true>(body.data(), body.size(), n, ctx.data(), tables.data(), sb, scratch);
  }
  return ok ? absl::OkStatus() : Corrupt("rans", "coded plane does not decode");
}

class RansStage final : public Stage {
 public:
  using Stage::Stage;

  absl::StatusOr<std::vector<StreamDesc>> Plan(absl::Span<const StreamDesc> in) const override {
    return AllOpaque(in);
  }

  // Every plane but the top one is coded in the context of the element's top byte.
  absl::Status DoEncode(const Streams& in, Streams* out) const override {
    EncodeBytePlanes(in, out, [](size_t b, size_t n, const Stream& s, std::vector<uint8_t>* buf) {
      const size_t es = ElemSize(s.desc().type);
      const uint8_t* data = s.data().data();
      EncodePlane(data + (es - 1 - b), es, n, b == 0, data + (es - 1), es, s.desc().geom, buf);
    });
    return absl::OkStatus();
  }

  absl::Status DoDecode(const Streams& encoded, absl::Span<const StreamDesc> want,
                        absl::Span<uint8_t> into, Streams* decoded) const override {
    return DecodeBytePlanes(
        "rans", encoded, want, into, decoded,
        [](ByteReader* br, size_t n, const StreamDesc& d, const uint8_t* top, uint8_t* scratch,
           const uint8_t** plane) { return DecodePlane(br, n, d.geom, top, scratch, plane); });
  }
};

}  // namespace

void RegisterRansStage(StageRegistry& r) {
  r.Register(StageInfo{
      .id = stage_id::kRans,
      .name = "rans",
      .summary = "static rANS per byte plane (8 interleaved states, 8- to 12-bit frequencies), "
                 "tables per channel group for the top byte and per top-byte bucket for the "
                 "others; raw/constant fallback",
      .lossless = true,
      .params = {},
      .make = MakeStage<RansStage>,
  });
}

}  // namespace kvcomp

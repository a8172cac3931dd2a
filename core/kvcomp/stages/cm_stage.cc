// cm: the max-ratio backend. An adaptive binary arithmetic coder (CABAC-like, but with
// logistic mixing of several context models, as in the PAQ family) codes the most significant
// byte of every element bit by bit; the other bytes, close to random in KV caches (see
// docs/CODEC_NOTES.md), are stored raw. Nothing is transmitted about the models: they learn
// as they go, so small tensors pay no table.
//
// Context models for bit j of the top byte of element (plane p, row t, column c), all keyed
// also by the bits of the byte already coded:
//   0  nothing else (order 0 over the stream)
//   1  channel (p * cols + c)
//   2  channel, and the exponent of the previous token in the same channel
//   3  channel, and the exponent of the previous column in the same token (RoPE partner)
//   4  previous token's and previous column's exponents, no channel
// A small mixer per bit position combines them; its output drives the coder. This model is
// part of the format: the code below is its definition. Layout: docs/FORMAT.md#cm-id-25.
#include <algorithm>
#include <cmath>
#include <memory>

#include "core/kvcomp/registry.h"
#include "core/kvcomp/stage_ids.h"
#include "core/kvcomp/stages/stage_util.h"

namespace kvcomp {
namespace {

using namespace stage_util;

constexpr int kModels = 5;

// Probabilities are 16-bit P(bit = 1); stretch/squash are done in float.
struct Tables {
  float stretch[4096];
  float rate[256];
  Tables() {
    for (int i = 0; i < 4096; ++i) {
      const double p = (i + 0.5) / 4096.0;
      stretch[i] = static_cast<float>(std::log(p / (1 - p)));
    }
    for (int n = 0; n < 256; ++n) rate[n] = 1.0f / (n + 1.6f);
  }
};
const Tables& T() {
  static const Tables t;
  return t;
}

// One adaptive probability with a count-based learning rate (fast start, then a floor).
struct Counter {
  uint16_t p = 32768;
  uint8_t n = 0;
};

class Model {
 public:
  // Channels beyond kMaxChannelSlots share slots (channel modulo the slot count), which
  // bounds the tables at ~70 MB whatever a frame's geometry claims.
  static constexpr uint64_t kMaxChannelSlots = 1024;

  Model(uint64_t channels, uint32_t limit) : limit_(limit) {
    channels = std::max<uint64_t>(1, std::min(channels, kMaxChannelSlots));
    ch_ = channels;
    t0_.resize(256);
    t1_.resize(channels * 256);
    t2_.resize(channels * 33 * 256);
    t3_.resize(channels * 33 * 256);
    t4_.resize(33 * 33 * 256);
    for (auto& w : w_) {
      for (float& x : w) x = 0.3f;
    }
  }

  // Sets the element context; exps are 0..31, or 32 when absent.
  void SetElement(uint64_t channel, uint32_t prev_tok_exp, uint32_t prev_col_exp) {
    channel %= ch_;
    base_[0] = 0;
    base_[1] = channel * 256;
    base_[2] = (channel * 33 + prev_tok_exp) * 256;
    base_[3] = (channel * 33 + prev_col_exp) * 256;
    base_[4] = (uint64_t{prev_tok_exp} * 33 + prev_col_exp) * 256;
  }

  // P(bit = 1) in 16 bits for tree node `node` (1..255) at bit position j (0 = MSB).
  uint32_t Predict(uint32_t node, int j) {
    c_[0] = &t0_[base_[0] + node];
    c_[1] = &t1_[base_[1] + node];
    c_[2] = &t2_[base_[2] + node];
    c_[3] = &t3_[base_[3] + node];
    c_[4] = &t4_[base_[4] + node];
    const Tables& tb = T();
    float dot = 0;
    for (int i = 0; i < kModels; ++i) {
      st_[i] = tb.stretch[c_[i]->p >> 4];
      dot += w_[j][i] * st_[i];
    }
    j_ = j;
    dot = std::min(15.0f, std::max(-15.0f, dot));
    pr_ = 1.0f / (1.0f + std::exp(-dot));
    uint32_t p = static_cast<uint32_t>(pr_ * 65536.0f);
    return std::min<uint32_t>(65535 - 64, std::max<uint32_t>(64, p));
  }

  void Update(int bit) {
    const float err = static_cast<float>(bit) - pr_;
    for (int i = 0; i < kModels; ++i) w_[j_][i] += 0.02f * err * st_[i];
    const Tables& tb = T();
    const int target = bit ? 65535 : 0;
    for (int i = 0; i < kModels; ++i) {
      Counter& c = *c_[i];
      c.p = static_cast<uint16_t>(c.p + (target - c.p) * tb.rate[c.n]);
      if (c.n < limit_) ++c.n;
    }
  }

 private:
  uint64_t ch_;
  uint32_t limit_;
  std::vector<Counter> t0_, t1_, t2_, t3_, t4_;
  uint64_t base_[kModels] = {};
  Counter* c_[kModels] = {};
  float st_[kModels] = {};
  float w_[8][kModels];
  float pr_ = 0.5f;
  int j_ = 0;
};

class Encoder {
 public:
  explicit Encoder(std::vector<uint8_t>* out) : out_(out) {}
  void Code(int bit, uint32_t p1) {
    const uint32_t xmid = x1_ + static_cast<uint32_t>((uint64_t{x2_ - x1_} * p1) >> 16);
    if (bit) {
      x2_ = xmid;
    } else {
      x1_ = xmid + 1;
    }
    while (((x1_ ^ x2_) & 0xff000000u) == 0) {
      out_->push_back(static_cast<uint8_t>(x2_ >> 24));
      x1_ <<= 8;
      x2_ = (x2_ << 8) | 255;
    }
  }
  void Finish() {
    for (int i = 0; i < 4; ++i) {
      out_->push_back(static_cast<uint8_t>(x1_ >> 24));
      x1_ <<= 8;
    }
  }

 private:
  std::vector<uint8_t>* out_;
  uint32_t x1_ = 0, x2_ = 0xffffffffu;
};

class Decoder {
 public:
  explicit Decoder(absl::Span<const uint8_t> in) : in_(in) {
    for (int i = 0; i < 4; ++i) x_ = (x_ << 8) | Next();
  }
  int Code(uint32_t p1) {
    const uint32_t xmid = x1_ + static_cast<uint32_t>((uint64_t{x2_ - x1_} * p1) >> 16);
    const int bit = x_ <= xmid;
    if (bit) {
      x2_ = xmid;
    } else {
      x1_ = xmid + 1;
    }
    while (((x1_ ^ x2_) & 0xff000000u) == 0) {
      x1_ <<= 8;
      x2_ = (x2_ << 8) | 255;
      x_ = (x_ << 8) | Next();
    }
    return bit;
  }
  // Reads past the end yield zeros; a valid stream never needs more than its bytes.
  bool overrun() const { return pos_ > in_.size(); }

 private:
  uint32_t Next() { return pos_ < in_.size() ? in_[pos_++] : (++pos_, 0u); }
  absl::Span<const uint8_t> in_;
  size_t pos_ = 0;
  uint32_t x1_ = 0, x2_ = 0xffffffffu, x_ = 0;
};

// The top byte's exponent field for the context (5 bits; the sign and the mantissa bits
// carried in the top byte are dropped): FP16 bits 14..10, else the top byte's bits 6..2.
inline uint32_t ExpOf(uint8_t top, bool fp16) { return fp16 ? (top >> 2) & 31 : (top >> 2) & 31; }

struct Layout3 {
  uint64_t rows, cols, plane_size;
};

// Walks elements in order, handing the model each element's context. `get(i)` reads the top
// byte of element i (already known to both sides when i is earlier than the current one).
template <typename Fn>
void SetContext(Model* m, const Layout3& g, uint64_t i, const uint8_t* top, Fn&&) {
  const uint64_t p = i / g.plane_size;
  const uint64_t rem = i - p * g.plane_size;
  const uint64_t r = rem / g.cols, c = rem - r * g.cols;
  const uint32_t pt = r > 0 ? ExpOf(top[i - g.cols], true) : 32;
  const uint32_t pc = c > 0 ? ExpOf(top[i - 1], true) : 32;
  m->SetElement(p * g.cols + c, pt, pc);
}

class CmStage final : public Stage {
 public:
  using Stage::Stage;

  absl::StatusOr<std::vector<StreamDesc>> Plan(absl::Span<const StreamDesc> in) const override {
    return AllOpaque(in);
  }

  absl::Status DoEncode(const Streams& in, Streams* out) const override {
    EncodeTrimmed(in, out, [this](const Stream& s, uint64_t n, std::vector<uint8_t>* buf) {
      const StreamDesc& d = s.desc();
      const size_t es = ElemSize(d.type);
      const uint8_t* src = s.data().data();
      std::vector<uint8_t> top(n);
      for (uint64_t i = 0; i < n; ++i) top[i] = src[i * es + es - 1];
      std::vector<uint8_t> ac;
      {
        Model m(std::min<uint64_t>(d.geom.channels(), std::max<uint64_t>(1, n / 16)), Limit());
        Encoder enc(&ac);
        const Layout3 g{d.geom.rows, d.geom.cols, d.geom.rows * d.geom.cols};
        for (uint64_t i = 0; i < n; ++i) {
          SetContext(&m, g, i, top.data(), 0);
          uint32_t node = 1;
          for (int j = 0; j < 8; ++j) {
            const int bit = (top[i] >> (7 - j)) & 1;
            enc.Code(bit, m.Predict(node, j));
            m.Update(bit);
            node = (node << 1) | bit;
          }
        }
        enc.Finish();
      }
      ByteWriter(buf).Varint(ac.size());
      buf->insert(buf->end(), ac.begin(), ac.end());
      const size_t at = buf->size();
      buf->resize(at + n * (es - 1));
      for (uint64_t i = 0; i < n; ++i) {
        std::memcpy(buf->data() + at + i * (es - 1), src + i * es, es - 1);
      }
    });
    return absl::OkStatus();
  }

  absl::Status DoDecode(const Streams& encoded, absl::Span<const StreamDesc> want,
                        absl::Span<uint8_t> into, Streams* decoded) const override {
    return DecodeTrimmed(
        "cm", encoded, want, into, decoded,
        [this](ByteReader* br, uint64_t n, const StreamDesc& d, uint8_t* out) -> absl::Status {
          const size_t es = ElemSize(d.type);
          uint64_t ac_len;
          absl::Span<const uint8_t> ac, low;
          if (!br->Varint(&ac_len) || !br->Bytes(ac_len, &ac)) {
            return Corrupt("cm", "coded section");
          }
          if (!br->Bytes(n * (es - 1), &low) || br->remaining() != 0) {
            return Corrupt("cm", "raw section size");
          }
          std::vector<uint8_t> top(n);
          Model m(std::min<uint64_t>(d.geom.channels(), std::max<uint64_t>(1, n / 16)), Limit());
          Decoder dec(ac);
          const Layout3 g{d.geom.rows, d.geom.cols, d.geom.rows * d.geom.cols};
          for (uint64_t i = 0; i < n; ++i) {
            SetContext(&m, g, i, top.data(), 0);
            uint32_t node = 1;
            for (int j = 0; j < 8; ++j) {
              const int bit = dec.Code(m.Predict(node, j));
              m.Update(bit);
              node = (node << 1) | bit;
            }
            top[i] = static_cast<uint8_t>(node);
            if (dec.overrun()) return Corrupt("cm", "coded section ends early");
          }
          for (uint64_t i = 0; i < n; ++i) {
            std::memcpy(out + i * es, low.data() + i * (es - 1), es - 1);
            out[i * es + es - 1] = top[i];
          }
          return absl::OkStatus();
        });
  }

 private:
  uint32_t Limit() const { return static_cast<uint32_t>(values()[0]); }
};

}  // namespace

void RegisterCmStage(StageRegistry& r) {
  r.Register(StageInfo{
      .id = stage_id::kCm,
      .name = "cm",
      .summary = "adaptive binary arithmetic coding of each element's top byte, mixing channel, "
                 "previous-token and previous-column contexts; other bytes raw",
      .lossless = true,
      .params = {{.name = "limit",
                  .type = ParamType::kInt,
                  .default_value = 60,
                  .min = 2,
                  .max = 255,
                  .help = "adaptation: counts saturate here (higher = slower, steadier)"}},
      .make = MakeStage<CmStage>,
  });
}

}  // namespace kvcomp

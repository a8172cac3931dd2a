#include "kvcomp_client.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstring>
#include <random>
#include <set>
#include <thread>

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "io/file_util.h"
#include "kvcomp/frame.h"
#include "kvcomp/status_macros.h"
#include "kvcomp/token_blocks.h"
#include "kvcomp/v1/kvcomp.grpc.pb.h"
#include "shm_region.h"

namespace kvcomp::client {
namespace {

namespace pb = ::kvcomp::v1;

absl::Status FromGrpc(const grpc::Status& s, absl::string_view method) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      absl::StrCat(method, ": ", s.error_message()));
}

void SetDeadline(grpc::ClientContext* ctx, const ClientOptions& o) {
  ctx->set_deadline(std::chrono::system_clock::now() + absl::ToChronoNanoseconds(o.timeout));
}

// The wait before retry number `retry` (1 for the first), `u` uniform in [0, 1).
absl::Duration Backoff(const RetryPolicy& p, int retry, double u) {
  double ms = absl::ToDoubleMilliseconds(p.initial_backoff) * std::pow(p.multiplier, retry - 1);
  ms = std::min(ms, absl::ToDoubleMilliseconds(p.max_backoff));
  return absl::Milliseconds(ms * (1 + p.jitter * (2 * u - 1)));
}

double Uniform() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::uniform_real_distribution<double>(0, 1)(rng);
}

bool ShouldRetry(const grpc::Status& s, int attempt, const ClientOptions& o) {
  return s.error_code() == grpc::StatusCode::UNAVAILABLE && attempt < o.retry.max_attempts;
}

// Runs `call(ctx)` with a fresh context per attempt, retrying on UNAVAILABLE.
template <typename Fn>
grpc::Status WithRetry(const ClientOptions& o, Fn call) {
  for (int attempt = 1;; ++attempt) {
    grpc::ClientContext ctx;
    SetDeadline(&ctx, o);
    grpc::Status s = call(&ctx);
    if (!ShouldRetry(s, attempt, o)) return s;
    absl::SleepFor(Backoff(o.retry, attempt, Uniform()));
  }
}

// Counts a Client's unfinished async calls. ~Client waits for zero: a call's last steps
// (destroying its ClientContext, after the user's callback) must not race the channel's end.
class InFlightCalls {
 public:
  // Held by one call from its start until its last member is gone.
  class Ticket {
   public:
    explicit Ticket(InFlightCalls* calls) : calls_(calls) {
      absl::MutexLock lock(&calls_->mu_);
      ++calls_->count_;
    }
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;
    ~Ticket() {
      absl::MutexLock lock(&calls_->mu_);
      --calls_->count_;
    }

   private:
    InFlightCalls* calls_;
  };
  void WaitIdle() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](int* count) { return *count == 0; }, &count_));
  }

 private:
  absl::Mutex mu_;
  int count_ ABSL_GUARDED_BY(mu_) = 0;
};

// One asynchronous unary call with retries: `start` issues an attempt on the callback API,
// `finish` gets the final status and response. Owns itself; deleted after `finish`.
template <typename Req, typename Resp>
class AsyncCall {
 public:
  using Start = std::function<void(grpc::ClientContext*, const Req*, Resp*,
                                   std::function<void(grpc::Status)>)>;
  using Finish = std::function<void(const grpc::Status&, Resp&)>;
  static void Run(InFlightCalls* calls, const ClientOptions& o, Req req, Start start,
                  Finish finish) {
    (new AsyncCall(calls, o, std::move(req), std::move(start), std::move(finish)))->Attempt();
  }

 private:
  AsyncCall(InFlightCalls* calls, const ClientOptions& o, Req req, Start start, Finish finish)
      : ticket_(calls),
        options_(o),
        req_(std::move(req)),
        start_(std::move(start)),
        finish_(std::move(finish)) {}
  // Touches nothing after start_: the callback may already have deleted this.
  void Attempt() {
    ++attempt_;
    ctx_ = std::make_unique<grpc::ClientContext>();
    SetDeadline(ctx_.get(), options_);
    resp_.Clear();
    start_(ctx_.get(), &req_, &resp_, [this](grpc::Status s) {
      if (ShouldRetry(s, attempt_, options_)) {
        const absl::Duration wait = Backoff(options_.retry, attempt_, Uniform());
        // Retries are rare: a short-lived thread waits out the backoff, off gRPC's threads.
        std::thread([this, wait] {
          absl::SleepFor(wait);
          Attempt();
        }).detach();
        return;
      }
      finish_(s, resp_);
      delete this;
    });
  }
  const InFlightCalls::Ticket ticket_;  // first member: released after all the others
  const ClientOptions options_;
  Req req_;
  Resp resp_;
  std::unique_ptr<grpc::ClientContext> ctx_;
  int attempt_ = 0;
  Start start_;
  Finish finish_;
};

pb::TensorKind KindToProto(Kind k) {
  switch (k) {
    case Kind::kKey:
      return pb::TENSOR_KIND_K;
    case Kind::kValue:
      return pb::TENSOR_KIND_V;
    case Kind::kUnspecified:
      break;
  }
  return pb::TENSOR_KIND_UNSPECIFIED;
}

Kind KindFromProto(pb::TensorKind k) {
  if (k == pb::TENSOR_KIND_K) return Kind::kKey;
  if (k == pb::TENSOR_KIND_V) return Kind::kValue;
  return Kind::kUnspecified;
}

absl::StatusOr<io::NamedTensor> FromProto(const pb::Tensor& t) {
  io::NamedTensor out;
  out.name = t.name();
  TensorMeta& m = out.tensor.meta;
  KV_ASSIGN_OR_RETURN(m.dtype, ParseDType(t.datatype()));
  m.layer = t.layer();
  m.kind = KindFromProto(t.kind());
  m.layout = t.layout() == pb::TENSOR_LAYOUT_TOKEN_MAJOR ? Layout::kTokenMajor : Layout::kHeadMajor;
  m.shape.assign(t.shape().begin(), t.shape().end());
  const auto& raw = t.raw_contents();
  // Rejects a response whose bytes do not match its shape and dtype.
  auto view = TensorView::Make(
      m, absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(raw.data()), raw.size()));
  if (!view.ok()) {
    return absl::DataLossError(
        absl::StrCat("server returned a bad tensor '", t.name(), "': ", view.status().message()));
  }
  out.tensor.bytes.assign(raw.begin(), raw.end());
  return out;
}

TensorReport ReportFromProto(const pb::TensorReport& r) {
  TensorReport out;
  out.name = r.name();
  out.layer = r.layer();
  out.kind = KindFromProto(r.kind());
  if (auto d = ParseDType(r.datatype()); d.ok()) out.dtype = *d;
  out.shape.assign(r.shape().begin(), r.shape().end());
  out.raw_bytes = r.raw_bytes();
  out.compressed_bytes = r.compressed_bytes();
  out.ratio = r.ratio();
  out.codec = r.codec();
  out.lossless = r.lossless();
  if (!r.lossless() && r.has_error()) {
    ErrorStats e;
    e.mae = r.error().mae();
    e.rel_mae = r.error().rel_mae();
    e.max_abs = r.error().max_abs();
    e.rmse = r.error().rmse();
    e.rel_rmse = r.error().rel_rmse();
    e.cosine = r.error().cosine();
    e.snr_db = r.error().snr_db();
    out.error = e;
  }
  out.compress_seconds = r.compress_seconds();
  out.decompress_seconds = r.decompress_seconds();
  return out;
}

Totals TotalsFromProto(const pb::Totals& t) {
  return Totals{t.raw_bytes(), t.compressed_bytes(), t.ratio()};
}

absl::Status CheckRequestSize(const google::protobuf::Message& req, const ClientOptions& o,
                              absl::string_view method) {
  const size_t size = req.ByteSizeLong();
  if (size > static_cast<size_t>(o.max_message_bytes)) {
    return absl::ResourceExhaustedError(
        absl::StrCat(method, ": request of ", size, " bytes is above the client's limit of ",
                     o.max_message_bytes, " bytes (max message size)"));
  }
  return absl::OkStatus();
}

// ---- Streaming: chunks under the threshold, token blocks, reassembly ----

// The default chunk: a server holds about two chunks of a stream at once (server/raw_reply.h),
// so 32 MiB keeps any cache streamed with the defaults under ~90 MiB of server memory (256 MiB
// streamed: 86 MiB peak; with chunks at the server's 64 MiB message limit, 147). Well within
// kvcomp-server's default message limit (64 MiB).
constexpr int64_t kDefaultChunkBytes = int64_t{32} << 20;
// A tensor's metadata in a message (name, shape, datatype, report), counted generously.
constexpr uint64_t kPerTensorOverhead = 512;

// Room kept in a message for headers: 1/16 of it, at most 64 KiB.
int64_t HeaderRoom(int64_t message_bytes) {
  return std::min<int64_t>(message_bytes / 16, int64_t{64} << 10);
}

int64_t EffectiveThreshold(const ClientOptions& o) {
  if (o.stream_threshold_bytes > 0) return o.stream_threshold_bytes;
  const int64_t m = std::min<int64_t>(o.max_message_bytes, kDefaultChunkBytes);
  return m - HeaderRoom(m);
}

// The most one tensor (or block) may cost in a message of max_message_bytes.
uint64_t HardLimit(const ClientOptions& o) {
  return static_cast<uint64_t>(o.max_message_bytes - HeaderRoom(o.max_message_bytes));
}

// A piece of a request: a whole item (tensor, or frame to decode) or tokens
// [offset, offset + count) of a tensor. `cost` is what it adds to a message.
struct Piece {
  size_t item = 0;
  int64_t offset = 0;
  int64_t count = -1;  // -1: the whole item
  uint64_t cost = 0;
  absl::Span<const uint8_t> frame;  // Decompress: the frame
};

// Consecutive pieces grouped into chunks whose summed cost stays within `budget` (a piece
// above it gets a chunk of its own).
std::vector<std::vector<Piece>> Pack(std::vector<Piece> pieces, uint64_t budget) {
  std::vector<std::vector<Piece>> chunks;
  uint64_t used = 0;
  for (Piece& p : pieces) {
    if (chunks.empty() || used + p.cost > budget) {
      chunks.emplace_back();
      used = 0;
    }
    used += p.cost;
    chunks.back().push_back(std::move(p));
  }
  return chunks;
}

// Splits each tensor into pieces that fit `threshold`: whole, or token blocks.
absl::StatusOr<std::vector<Piece>> CutTensors(absl::Span<const io::NamedTensor> tensors,
                                              uint64_t threshold, uint64_t hard_limit) {
  std::vector<Piece> pieces;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorMeta& m = tensors[i].tensor.meta;
    const uint64_t bytes = tensors[i].tensor.bytes.size();
    // Malformed tensors go whole: the server names what is wrong with them.
    const bool valid = m.Validate().ok() && m.NumBytes() == bytes;
    if (bytes + kPerTensorOverhead <= threshold || !valid) {
      pieces.push_back({i, 0, -1, bytes + kPerTensorOverhead, {}});
      continue;
    }
    const Geometry g = GeometryOf(m);
    const uint64_t token_bytes = g.planes * g.cols * DTypeSize(m.dtype);
    uint64_t per = threshold > kPerTensorOverhead + token_bytes
                       ? (threshold - kPerTensorOverhead) / token_bytes
                       : 0;
    if (per == 0 && token_bytes + kPerTensorOverhead <= hard_limit) per = 1;
    if (per == 0) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "Compress: one token of tensor '", tensors[i].name, "' is ", token_bytes,
          " bytes, above the client's limit of ", hard_limit, " bytes (max message size)"));
    }
    for (uint64_t offset = 0; offset < g.rows; offset += per) {
      const uint64_t count = std::min(per, g.rows - offset);
      pieces.push_back({i,
                        static_cast<int64_t>(offset),
                        static_cast<int64_t>(count),
                        count * token_bytes + kPerTensorOverhead,
                        {}});
    }
  }
  return pieces;
}

// Tokens [offset, offset + count) of `t` as a tensor of its own, with token_offset and
// total_tokens set.
void TokenBlockToProto(const io::NamedTensor& t, int64_t offset, int64_t count, pb::Tensor* out) {
  const TensorMeta& m = t.tensor.meta;
  io::NamedTensor meta_only{t.name, Tensor{TokenBlockMeta(m, static_cast<uint64_t>(count)), {}}};
  ToProto(meta_only, out);
  out->set_token_offset(static_cast<uint64_t>(offset));
  out->set_total_tokens(GeometryOf(m).rows);
  std::string* raw = out->mutable_raw_contents();
  raw->resize(TokenBytes(m) * static_cast<uint64_t>(count));
  GatherTokens(m, t.tensor.bytes.data(), static_cast<uint64_t>(offset),
               static_cast<uint64_t>(count), reinterpret_cast<uint8_t*>(raw->data()));
}

// Token blocks of one tensor, in token order, concatenated along the token axis.
absl::StatusOr<io::NamedTensor> ConcatTokenBlocks(std::vector<io::NamedTensor> blocks) {
  io::NamedTensor out;
  out.name = blocks[0].name;
  TensorMeta& m = out.tensor.meta;
  m = blocks[0].tensor.meta;
  const size_t axis = TokenAxis(m);
  int64_t tokens = 0;
  for (const io::NamedTensor& b : blocks) {
    if (!SameTensorApartFromTokens(m, b.tensor.meta)) {
      return absl::InvalidArgumentError(absl::StrCat("Decompress: the token blocks of '", out.name,
                                                     "' disagree: ", b.tensor.meta.ShapeString(),
                                                     " after ",
                                                     blocks[0].tensor.meta.ShapeString()));
    }
    tokens += b.tensor.meta.shape[axis];
  }
  m.shape[axis] = tokens;
  KV_RETURN_IF_ERROR(m.Validate());
  out.tensor.bytes.resize(m.NumBytes());
  uint64_t offset = 0;
  for (io::NamedTensor& b : blocks) {
    const uint64_t count = static_cast<uint64_t>(b.tensor.meta.shape[axis]);
    ScatterTokens(m, out.tensor.bytes.data(), offset, count, b.tensor.bytes.data());
    offset += count;
    b.tensor.bytes = {};
  }
  return out;
}

// The reports of a tensor's token blocks as one report (see CompressedTensor::report): core's
// merge, with the seconds summed.
TensorReport MergeBlockReports(const std::vector<TensorReport>& blocks, const TensorMeta& whole) {
  std::vector<kvcomp::TensorReport> core;
  for (const TensorReport& b : blocks) {
    kvcomp::TensorReport& c = core.emplace_back();
    c.raw_bytes = b.raw_bytes;
    c.compressed_bytes = b.compressed_bytes;
    c.spec = b.codec;
    c.lossless = b.lossless;
    c.error = b.error;
  }
  const kvcomp::TensorReport merged = kvcomp::MergeBlockReports(core, whole);
  TensorReport out = blocks[0];
  out.shape = whole.shape;
  out.raw_bytes = merged.raw_bytes;
  out.compressed_bytes = merged.compressed_bytes;
  out.ratio = merged.ratio();
  out.codec = merged.spec;
  out.lossless = merged.lossless;
  out.error = merged.error;
  out.compress_seconds = out.decompress_seconds = 0;
  for (const TensorReport& b : blocks) {
    out.compress_seconds += b.compress_seconds;
    out.decompress_seconds += b.decompress_seconds;
  }
  return out;
}

// Sends chunk requests and hands each answer on, in order: one unary call for a single chunk,
// else one stream (`method` + "Stream"). Either way retried on UNAVAILABLE, from the start.
template <typename Req, typename Resp>
struct Exchange {
  const ClientOptions* options;
  std::string method;
  std::function<grpc::Status(grpc::ClientContext*, const Req&, Resp*)> unary;
  std::function<std::unique_ptr<grpc::ClientReaderWriter<Req, Resp>>(grpc::ClientContext*)> open;
  size_t chunks = 0;
  std::function<Req(size_t)> make;                  // builds chunk i
  std::function<void()> reset;                      // before each attempt
  std::function<absl::Status(size_t, Resp&)> take;  // consumes the answer to chunk i

  absl::Status Run() const {
    if (chunks <= 1) {
      const Req req = make(0);
      KV_RETURN_IF_ERROR(CheckRequestSize(req, *options, method));
      Resp resp;
      KV_RETURN_IF_ERROR(FromGrpc(WithRetry(*options,
                                            [&](grpc::ClientContext* ctx) {
                                              resp.Clear();
                                              return unary(ctx, req, &resp);
                                            }),
                                  method));
      reset();
      return take(0, resp);
    }
    const std::string stream_method = method + "Stream";
    absl::Status local;
    size_t answered = 0;
    const grpc::Status s = WithRetry(*options, [&](grpc::ClientContext* ctx) {
      reset();
      local = absl::OkStatus();
      answered = 0;
      auto stream = open(ctx);
      for (size_t i = 0; i < chunks; ++i) {
        const Req req = make(i);
        local = CheckRequestSize(req, *options, stream_method);
        if (local.ok()) {
          if (!stream->Write(req)) break;
          Resp resp;
          if (!stream->Read(&resp)) break;
          local = take(i, resp);
        }
        if (!local.ok()) {
          ctx->TryCancel();
          break;
        }
        ++answered;
        if (options->on_chunk) options->on_chunk(answered, chunks);
      }
      stream->WritesDone();
      const grpc::Status st = stream->Finish();
      // A local failure is final: not UNAVAILABLE, so not retried.
      return local.ok() ? st : grpc::Status(grpc::StatusCode::CANCELLED, "");
    });
    KV_RETURN_IF_ERROR(local);
    KV_RETURN_IF_ERROR(FromGrpc(s, stream_method));
    if (answered != chunks) {
      return absl::DataLossError(
          absl::StrCat(stream_method, ": server answered ", answered, " of ", chunks, " chunks"));
    }
    return absl::OkStatus();
  }
};

// Compress as chunks of pieces: builds each chunk's request and assembles the answers.
class CompressPlan {
 public:
  static absl::StatusOr<CompressPlan> Make(absl::Span<const io::NamedTensor> tensors,
                                           const ClientOptions& o) {
    CompressPlan plan;
    KV_ASSIGN_OR_RETURN(std::vector<Piece> pieces,
                        CutTensors(tensors, EffectiveThreshold(o), HardLimit(o)));
    plan.chunks_ = Pack(std::move(pieces), EffectiveThreshold(o));
    for (const io::NamedTensor& t : tensors) plan.metas_.push_back(t.tensor.meta);
    return plan;
  }
  size_t chunks() const { return std::max<size_t>(chunks_.size(), 1); }
  pb::CompressRequest Request(size_t i, absl::string_view spec,
                              absl::Span<const io::NamedTensor> tensors) const {
    pb::CompressRequest req;
    req.set_codec(std::string(spec));
    if (i >= chunks_.size()) return req;
    for (const Piece& p : chunks_[i]) {
      if (p.count < 0) {
        ToProto(tensors[p.item], req.add_tensors());
      } else {
        TokenBlockToProto(tensors[p.item], p.offset, p.count, req.add_tensors());
      }
    }
    return req;
  }
  void Reset() {
    tensors_.assign(metas_.size(), CompressedTensor{});
    reports_.assign(metas_.size(), {});
    totals_ = {};
  }
  absl::Status Take(size_t i, pb::CompressResponse& resp) {
    const size_t expected = i < chunks_.size() ? chunks_[i].size() : 0;
    if (static_cast<size_t>(resp.tensors_size()) != expected) {
      return absl::DataLossError(absl::StrCat("Compress: server returned ", resp.tensors_size(),
                                              " tensors for ", expected));
    }
    for (size_t k = 0; k < expected; ++k) {
      const Piece& p = chunks_[i][k];
      pb::CompressedTensor& t = *resp.mutable_tensors(static_cast<int>(k));
      if (p.count >= 0 && t.token_offset() != static_cast<uint64_t>(p.offset)) {
        return absl::DataLossError(absl::StrCat("Compress: server placed a block of '", t.name(),
                                                "' at token ", t.token_offset(), ", not ",
                                                p.offset));
      }
      CompressedTensor& out = tensors_[p.item];
      if (reports_[p.item].empty()) out.name = t.name();
      out.frame.insert(out.frame.end(), t.frame().begin(), t.frame().end());
      reports_[p.item].push_back(ReportFromProto(t.report()));
    }
    totals_.raw_bytes += resp.totals().raw_bytes();
    totals_.compressed_bytes += resp.totals().compressed_bytes();
    return absl::OkStatus();
  }
  CompressResult Result() {
    CompressResult out;
    for (size_t i = 0; i < tensors_.size(); ++i) {
      tensors_[i].report = reports_[i].size() == 1 ? std::move(reports_[i][0])
                                                   : MergeBlockReports(reports_[i], metas_[i]);
    }
    out.tensors = std::move(tensors_);
    out.totals = totals_;
    out.totals.ratio = totals_.compressed_bytes
                           ? static_cast<double>(totals_.raw_bytes) / totals_.compressed_bytes
                           : 0;
    return out;
  }

 private:
  std::vector<std::vector<Piece>> chunks_;
  std::vector<TensorMeta> metas_;
  std::vector<CompressedTensor> tensors_;
  std::vector<std::vector<TensorReport>> reports_;
  Totals totals_;
};

// Decompress as chunks of frames: each FrameRef is split into its frames (token blocks of one
// tensor, or one whole tensor); decoded blocks are concatenated back along the token axis.
class DecompressPlan {
 public:
  static absl::StatusOr<DecompressPlan> Make(absl::Span<const FrameRef> refs,
                                             const ClientOptions& o) {
    DecompressPlan plan;
    std::vector<Piece> pieces;
    const uint64_t hard = HardLimit(o);
    for (size_t i = 0; i < refs.size(); ++i) {
      auto frames = SplitFrames(refs[i].frame);
      // Unsplittable input goes as it is: the server names what is wrong with it.
      if (!frames.ok() || frames->empty()) {
        frames = std::vector<absl::Span<const uint8_t>>{refs[i].frame};
      }
      plan.frames_per_ref_.push_back(frames->size());
      for (size_t j = 0; j < frames->size(); ++j) {
        const absl::Span<const uint8_t> f = (*frames)[j];
        auto parsed = ParseFrame(f);
        const uint64_t raw = parsed.ok() ? parsed->header.meta.NumBytes() : 0;
        const uint64_t cost = std::max<uint64_t>(f.size(), raw) + kPerTensorOverhead;
        if (cost > hard) {
          return absl::ResourceExhaustedError(absl::StrCat(
              "Decompress: frame ", j, " of tensor ", i, " ('", refs[i].name, "') is ", f.size(),
              " bytes and decodes to ", raw, ", above the client's limit of ", hard,
              " bytes (max message size); compress in smaller token blocks "
              "(stream threshold)"));
        }
        pieces.push_back({i, 0, -1, cost, f});
      }
    }
    plan.chunks_ = Pack(std::move(pieces), EffectiveThreshold(o));
    for (const FrameRef& r : refs) plan.names_.push_back(r.name);
    return plan;
  }
  size_t chunks() const { return std::max<size_t>(chunks_.size(), 1); }
  pb::DecompressRequest Request(size_t i) const {
    pb::DecompressRequest req;
    if (i >= chunks_.size()) return req;
    for (const Piece& p : chunks_[i]) {
      pb::CompressedTensor* t = req.add_tensors();
      t->set_name(names_[p.item]);
      t->set_frame(p.frame.data(), p.frame.size());
    }
    return req;
  }
  void Reset() {
    out_.clear();
    pending_.clear();
  }
  absl::Status Take(size_t i, pb::DecompressResponse& resp) {
    const size_t expected = i < chunks_.size() ? chunks_[i].size() : 0;
    if (static_cast<size_t>(resp.tensors_size()) != expected) {
      return absl::DataLossError(absl::StrCat("Decompress: server returned ", resp.tensors_size(),
                                              " tensors for ", expected, " frames"));
    }
    for (size_t k = 0; k < expected; ++k) {
      KV_ASSIGN_OR_RETURN(io::NamedTensor t, FromProto(resp.tensors(static_cast<int>(k))));
      resp.mutable_tensors(static_cast<int>(k))->clear_raw_contents();
      pending_.push_back(std::move(t));
      // A tensor is complete once its last frame is back; its blocks become one tensor.
      if (pending_.size() == frames_per_ref_[out_.size()]) {
        if (pending_.size() == 1) {
          out_.push_back(std::move(pending_[0]));
        } else {
          KV_ASSIGN_OR_RETURN(io::NamedTensor whole, ConcatTokenBlocks(std::move(pending_)));
          out_.push_back(std::move(whole));
        }
        pending_.clear();
      }
    }
    return absl::OkStatus();
  }
  io::KvCache Result() { return std::move(out_); }

 private:
  std::vector<std::vector<Piece>> chunks_;
  std::vector<std::string> names_;
  std::vector<size_t> frames_per_ref_;
  io::KvCache out_;
  std::vector<io::NamedTensor> pending_;
};

}  // namespace

void MetaToProto(const std::string& name, const TensorMeta& m, pb::Tensor* out) {
  out->set_name(name);
  out->set_layer(m.layer);
  out->set_kind(KindToProto(m.kind));
  out->set_datatype(std::string(DTypeName(m.dtype)));
  for (int64_t d : m.shape) out->add_shape(d);
  out->set_layout(m.layout == Layout::kTokenMajor ? pb::TENSOR_LAYOUT_TOKEN_MAJOR
                                                  : pb::TENSOR_LAYOUT_HEAD_MAJOR);
}

void ToProto(const io::NamedTensor& t, pb::Tensor* out) {
  MetaToProto(t.name, t.tensor.meta, out);
  out->set_raw_contents(t.tensor.bytes.data(), t.tensor.bytes.size());
}

struct Client::Impl {
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  std::vector<std::unique_ptr<pb::KVCompressor::Stub>> stubs;  // one per channel
  std::unique_ptr<grpc::GenericStub> generic;                  // health checks, on channel 0
  std::atomic<size_t> next{0};
  InFlightCalls async_calls;
  std::unique_ptr<ShmSession> shm;  // OpenSharedMemory
  // The stub of the next call's channel, round robin.
  pb::KVCompressor::Stub* stub() { return stubs[next.fetch_add(1) % stubs.size()].get(); }
};

std::vector<absl::Span<const uint8_t>> CompressResult::Frames() const {
  std::vector<absl::Span<const uint8_t>> out;
  out.reserve(tensors.size());
  for (const CompressedTensor& t : tensors) out.push_back(t.frame);
  return out;
}

Client::Client(std::string target, ClientOptions options, std::unique_ptr<Impl> impl)
    : target_(std::move(target)), options_(options), impl_(std::move(impl)) {}
Client::~Client() { impl_->async_calls.WaitIdle(); }

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(const std::string& target,
                                                        const ClientOptions& options) {
  if (target.empty()) return absl::InvalidArgumentError("empty server address");
  if (options.max_message_bytes <= 0) {
    return absl::InvalidArgumentError("max message size must be positive");
  }
  if (options.stream_threshold_bytes < 0 ||
      options.stream_threshold_bytes > options.max_message_bytes) {
    return absl::InvalidArgumentError(
        "stream threshold must be between 0 (derived) and the max message size");
  }
  const RetryPolicy& r = options.retry;
  if (r.max_attempts < 1 || r.multiplier < 1 || r.jitter < 0 || r.jitter > 1 ||
      r.initial_backoff < absl::ZeroDuration() || r.max_backoff < r.initial_backoff) {
    return absl::InvalidArgumentError(
        "bad retry policy (need max_attempts >= 1, multiplier >= 1, jitter in [0, 1], "
        "0 <= initial_backoff <= max_backoff)");
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(options.max_message_bytes);
  args.SetMaxSendMessageSize(options.max_message_bytes);
  // Connections of its own: a Client's calls (and retries) never wait on another Client's
  // reconnect backoff towards the same target.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  // The channel reconnects on the retry policy's clock: with gRPC's default (1 s growing to
  // 120 s), a restarted server stayed unreachable for many retries after it was back.
  const auto ms = [](absl::Duration d) {
    return static_cast<int>(std::clamp<int64_t>(absl::ToInt64Milliseconds(d), 1, INT_MAX));
  };
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, ms(options.retry.initial_backoff));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, ms(options.retry.max_backoff));
  args.SetInt(GRPC_ARG_DNS_MIN_TIME_BETWEEN_RESOLUTIONS_MS, ms(options.retry.max_backoff));
  if (const std::string& lb = options.load_balancing_policy; !lb.empty()) {
    if (lb != "pick_first" && lb != "round_robin") {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown load-balancing policy '", lb, "' (pick_first or round_robin)"));
    }
    args.SetLoadBalancingPolicyName(lb);
  }
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
  if (options.tls.enabled) {
    const TlsOptions& t = options.tls;
    if (t.cert_chain_path.empty() != t.private_key_path.empty()) {
      return absl::InvalidArgumentError(
          "TLS: give both a client certificate and its key (mutual TLS), or neither");
    }
    grpc::SslCredentialsOptions ssl;
    auto read = [](const std::string& path, std::string* out) -> absl::Status {
      if (path.empty()) return absl::OkStatus();
      auto bytes = io::ReadFileBytes(path, 1 << 20);
      if (!bytes.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("TLS: ", bytes.status().message()));
      }
      out->assign(bytes->begin(), bytes->end());
      return absl::OkStatus();
    };
    KV_RETURN_IF_ERROR(read(t.root_ca_path, &ssl.pem_root_certs));
    KV_RETURN_IF_ERROR(read(t.cert_chain_path, &ssl.pem_cert_chain));
    KV_RETURN_IF_ERROR(read(t.private_key_path, &ssl.pem_private_key));
    creds = grpc::SslCredentials(ssl);
    if (!t.server_name_override.empty()) {
      args.SetSslTargetNameOverride(t.server_name_override);
    }
  }
  if (options.connections < 1 || options.connections > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("connections must be 1 to 64, not ", options.connections));
  }
  auto impl = std::make_unique<Impl>();
  const auto deadline =
      std::chrono::system_clock::now() + absl::ToChronoNanoseconds(options.connect_timeout);
  for (int i = 0; i < options.connections; ++i) {
    // Each its own TCP connection: the local subchannel pool above.
    std::shared_ptr<grpc::Channel> channel = grpc::CreateCustomChannel(target, creds, args);
    if (!channel) return absl::InvalidArgumentError(absl::StrCat("bad target ", target));
    if (options.connect_timeout > absl::ZeroDuration() && !channel->WaitForConnected(deadline)) {
      return absl::UnavailableError(absl::StrCat("cannot connect to ", target, " within ",
                                                 absl::FormatDuration(options.connect_timeout)));
    }
    impl->stubs.push_back(pb::KVCompressor::NewStub(channel));
    impl->channels.push_back(std::move(channel));
  }
  impl->generic = std::make_unique<grpc::GenericStub>(impl->channels[0]);
  return std::unique_ptr<Client>(new Client(target, options, std::move(impl)));
}

int64_t Client::stream_threshold_bytes() const { return EffectiveThreshold(options_); }

absl::StatusOr<CompressResult> Client::Compress(absl::string_view spec,
                                                absl::Span<const io::NamedTensor> tensors) {
  KV_ASSIGN_OR_RETURN(CompressPlan plan, CompressPlan::Make(tensors, options_));
  pb::KVCompressor::Stub* stub = impl_->stub();
  Exchange<pb::CompressRequest, pb::CompressResponse> exchange{
      &options_,
      "Compress",
      [stub](grpc::ClientContext* ctx, const pb::CompressRequest& req, pb::CompressResponse* resp) {
        return stub->Compress(ctx, req, resp);
      },
      [stub](grpc::ClientContext* ctx) { return stub->CompressStream(ctx); },
      plan.chunks(),
      [&](size_t i) { return plan.Request(i, spec, tensors); },
      [&] { plan.Reset(); },
      [&](size_t i, pb::CompressResponse& resp) { return plan.Take(i, resp); }};
  KV_RETURN_IF_ERROR(exchange.Run());
  return plan.Result();
}

namespace {

// Runs `work` on a thread of its own (a streamed async call runs the synchronous one there).
// `work` and what it owns are destroyed before the ticket goes, so ~Client waits for them.
void RunDetached(InFlightCalls* calls, std::function<void()> work) {
  auto ticket = std::make_shared<InFlightCalls::Ticket>(calls);
  std::thread([ticket, work = std::move(work)]() mutable {
    work();
    work = nullptr;
    ticket.reset();  // last: ~Client may proceed
  }).detach();
}

// The answer to a one-chunk async call, read through the same plan as the synchronous path.
template <typename Plan, typename Resp, typename Done>
void FinishOneChunk(const grpc::Status& s, const char* method, Plan& plan, Resp& resp, Done& done) {
  if (!s.ok()) {
    done(FromGrpc(s, method));
    return;
  }
  plan.Reset();
  if (absl::Status taken = plan.Take(0, resp); !taken.ok()) {
    done(taken);
  } else {
    done(plan.Result());
  }
}

}  // namespace

void Client::CompressAsync(absl::string_view spec, absl::Span<const io::NamedTensor> tensors,
                           CompressCallback done) {
  absl::StatusOr<CompressPlan> plan = CompressPlan::Make(tensors, options_);
  if (!plan.ok()) {
    done(plan.status());
    return;
  }
  if (plan->chunks() > 1) {
    // A stream: the synchronous call, with copies of the tensors.
    RunDetached(&impl_->async_calls,
                [this, spec = std::string(spec), copy = io::KvCache(tensors.begin(), tensors.end()),
                 done = std::move(done)] { done(Compress(spec, copy)); });
    return;
  }
  pb::CompressRequest req = plan->Request(0, spec, tensors);
  if (absl::Status s = CheckRequestSize(req, options_, "Compress"); !s.ok()) {
    done(s);
    return;
  }
  pb::KVCompressor::Stub* stub = impl_->stub();
  AsyncCall<pb::CompressRequest, pb::CompressResponse>::Run(
      &impl_->async_calls, options_, std::move(req),
      [stub](grpc::ClientContext* ctx, const pb::CompressRequest* rq, pb::CompressResponse* rs,
             std::function<void(grpc::Status)> cb) {
        stub->async()->Compress(ctx, rq, rs, std::move(cb));
      },
      [plan = std::move(*plan), done = std::move(done)](const grpc::Status& s,
                                                        pb::CompressResponse& resp) mutable {
        FinishOneChunk(s, "Compress", plan, resp, done);
      });
}

absl::StatusOr<io::KvCache> Client::Decompress(absl::Span<const FrameRef> frames) {
  KV_ASSIGN_OR_RETURN(DecompressPlan plan, DecompressPlan::Make(frames, options_));
  pb::KVCompressor::Stub* stub = impl_->stub();
  Exchange<pb::DecompressRequest, pb::DecompressResponse> exchange{
      &options_,
      "Decompress",
      [stub](grpc::ClientContext* ctx, const pb::DecompressRequest& req,
             pb::DecompressResponse* resp) { return stub->Decompress(ctx, req, resp); },
      [stub](grpc::ClientContext* ctx) { return stub->DecompressStream(ctx); },
      plan.chunks(),
      [&](size_t i) { return plan.Request(i); },
      [&] { plan.Reset(); },
      [&](size_t i, pb::DecompressResponse& resp) { return plan.Take(i, resp); }};
  KV_RETURN_IF_ERROR(exchange.Run());
  return plan.Result();
}

void Client::DecompressAsync(absl::Span<const FrameRef> frames, DecompressCallback done) {
  absl::StatusOr<DecompressPlan> plan = DecompressPlan::Make(frames, options_);
  if (!plan.ok()) {
    done(plan.status());
    return;
  }
  if (plan->chunks() > 1) {
    // A stream: the synchronous call, with copies of the frames.
    std::vector<std::pair<std::string, std::vector<uint8_t>>> copy;
    for (const FrameRef& f : frames)
      copy.emplace_back(f.name, std::vector<uint8_t>(f.frame.begin(), f.frame.end()));
    RunDetached(&impl_->async_calls, [this, copy = std::move(copy), done = std::move(done)] {
      std::vector<FrameRef> refs;
      for (const auto& [name, bytes] : copy) refs.push_back({name, bytes});
      done(Decompress(absl::MakeConstSpan(refs)));
    });
    return;
  }
  pb::DecompressRequest req = plan->Request(0);
  if (absl::Status s = CheckRequestSize(req, options_, "Decompress"); !s.ok()) {
    done(s);
    return;
  }
  pb::KVCompressor::Stub* stub = impl_->stub();
  AsyncCall<pb::DecompressRequest, pb::DecompressResponse>::Run(
      &impl_->async_calls, options_, std::move(req),
      [stub](grpc::ClientContext* ctx, const pb::DecompressRequest* rq, pb::DecompressResponse* rs,
             std::function<void(grpc::Status)> cb) {
        stub->async()->Decompress(ctx, rq, rs, std::move(cb));
      },
      [plan = std::move(*plan), done = std::move(done)](const grpc::Status& s,
                                                        pb::DecompressResponse& resp) mutable {
        FinishOneChunk(s, "Decompress", plan, resp, done);
      });
}

absl::StatusOr<io::KvCache> Client::Decompress(absl::Span<const absl::Span<const uint8_t>> frames) {
  std::vector<FrameRef> refs;
  refs.reserve(frames.size());
  for (auto f : frames) refs.push_back({"", f});
  return Decompress(absl::MakeConstSpan(refs));
}

absl::StatusOr<std::vector<CodecAnalysis>> Client::Analyze(
    absl::Span<const std::string> specs, absl::Span<const io::NamedTensor> tensors) {
  pb::AnalyzeRequest req;
  for (const std::string& s : specs) req.add_codecs(s);
  KV_ASSIGN_OR_RETURN(pb::AnalyzeResponse resp, Analyze(std::move(req), tensors));
  std::vector<CodecAnalysis> out;
  for (const pb::CodecAnalysis& c : resp.codecs()) {
    CodecAnalysis a;
    a.codec = c.codec();
    for (const pb::TensorReport& r : c.reports()) a.reports.push_back(ReportFromProto(r));
    a.totals = TotalsFromProto(c.totals());
    out.push_back(std::move(a));
  }
  return out;
}

absl::StatusOr<pb::AnalyzeResponse> Client::Analyze(pb::AnalyzeRequest request,
                                                    absl::Span<const io::NamedTensor> tensors) {
  for (const io::NamedTensor& t : tensors) ToProto(t, request.add_tensors());
  KV_RETURN_IF_ERROR(CheckRequestSize(request, options_, "Analyze"));
  pb::AnalyzeResponse resp;
  grpc::ClientContext ctx;
  SetDeadline(&ctx, options_);
  KV_RETURN_IF_ERROR(FromGrpc(impl_->stub()->Analyze(&ctx, request, &resp), "Analyze"));
  return resp;
}

absl::Status Client::Health(const std::string& service) {
  // grpc.health.v1.HealthCheckRequest { string service = 1; }, encoded by hand: Debian ships
  // no generated health stubs, and the message is a single field.
  if (service.size() > 127) return absl::InvalidArgumentError("service name too long");
  std::string req;
  if (!service.empty()) {
    req.push_back(0x0A);
    req.push_back(static_cast<char>(service.size()));
    req += service;
  }
  grpc::Slice slice(req);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  grpc::Status status = WithRetry(options_, [&](grpc::ClientContext* ctx) {
    grpc::Status st;
    grpc::CompletionQueue cq;
    auto call = impl_->generic->PrepareUnaryCall(ctx, "/grpc.health.v1.Health/Check", request, &cq);
    call->StartCall();
    call->Finish(&response, &st, reinterpret_cast<void*>(1));
    void* tag = nullptr;
    bool ok = false;
    cq.Next(&tag, &ok);
    cq.Shutdown();
    while (cq.Next(&tag, &ok)) {
    }
    return st;
  });
  KV_RETURN_IF_ERROR(FromGrpc(status, "Health"));
  std::vector<grpc::Slice> slices;
  if (!response.Dump(&slices).ok()) return absl::DataLossError("Health: unreadable response");
  std::string bytes;
  for (const grpc::Slice& s : slices) {
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  // HealthCheckResponse { ServingStatus status = 1; }: UNKNOWN 0, SERVING 1, NOT_SERVING 2,
  // SERVICE_UNKNOWN 3. Field 1 is a small varint.
  int state = 0;
  if (bytes.size() == 2 && bytes[0] == 0x08) {
    state = static_cast<unsigned char>(bytes[1]);
  } else if (!bytes.empty()) {
    return absl::DataLossError("Health: malformed HealthCheckResponse");
  }
  static constexpr const char* kNames[] = {"UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"};
  if (state == 1) return absl::OkStatus();
  return absl::UnavailableError(absl::StrCat("Health: service '", service, "' is ",
                                             state >= 0 && state < 4 ? kNames[state] : "?"));
}

}  // namespace kvcomp::client

namespace kvcomp::client {
namespace {

void ToProto(const RegionSlice& slice, pb::SharedMemoryRef* out) {
  out->set_region(slice.region);
  out->set_offset(slice.offset);
  out->set_byte_size(slice.byte_size);
}

RegionSlice FromProto(const pb::SharedMemoryRef& ref) {
  return {ref.region(), ref.offset(), ref.byte_size()};
}

}  // namespace

absl::Status Client::OpenSharedMemory(const std::string& socket_path) {
  KV_ASSIGN_OR_RETURN(impl_->shm, ShmSession::Connect(socket_path));
  return absl::OkStatus();
}

void Client::CloseSharedMemory() { impl_->shm.reset(); }

namespace {

// Runs one unary shared-memory call with the session's token, as WithRetry does any call.
template <typename Fn>
absl::Status ShmCall(const ClientOptions& options, const ShmSession* session,
                     absl::string_view method, Fn call) {
  if (session == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat(method, ": no shared-memory session (Client::OpenSharedMemory)"));
  }
  return FromGrpc(WithRetry(options,
                            [&](grpc::ClientContext* ctx) {
                              ctx->AddMetadata("kvcomp-shm-session", session->token());
                              return call(ctx);
                            }),
                  method);
}

}  // namespace

absl::Status Client::RegisterRegion(const SharedMemoryRegion& region, uint64_t offset,
                                    uint64_t byte_size) {
  if (impl_->shm == nullptr) {
    return absl::FailedPreconditionError(
        "RegisterRegion: no shared-memory session (Client::OpenSharedMemory)");
  }
  KV_ASSIGN_OR_RETURN(const std::string key, impl_->shm->PassFd(region.fd()));
  pb::SystemSharedMemoryRegisterRequest req;
  req.set_name(region.name());
  req.set_key(key);
  req.set_offset(offset);
  req.set_byte_size(byte_size > 0 || offset >= region.bytes().size()
                        ? byte_size
                        : region.bytes().size() - offset);
  pb::SystemSharedMemoryRegisterResponse resp;
  pb::KVCompressor::Stub* stub = impl_->stub();
  return ShmCall(
      options_, impl_->shm.get(), "SystemSharedMemoryRegister",
      [&](grpc::ClientContext* ctx) { return stub->SystemSharedMemoryRegister(ctx, req, &resp); });
}

absl::Status Client::UnregisterRegion(const std::string& name) {
  pb::SystemSharedMemoryUnregisterRequest req;
  req.set_name(name);
  pb::SystemSharedMemoryUnregisterResponse resp;
  pb::KVCompressor::Stub* stub = impl_->stub();
  return ShmCall(options_, impl_->shm.get(), "SystemSharedMemoryUnregister",
                 [&](grpc::ClientContext* ctx) {
                   return stub->SystemSharedMemoryUnregister(ctx, req, &resp);
                 });
}

absl::StatusOr<std::vector<RegionInfo>> Client::RegionStatus(const std::string& name) {
  pb::SystemSharedMemoryStatusRequest req;
  req.set_name(name);
  pb::SystemSharedMemoryStatusResponse resp;
  pb::KVCompressor::Stub* stub = impl_->stub();
  KV_RETURN_IF_ERROR(ShmCall(
      options_, impl_->shm.get(), "SystemSharedMemoryStatus",
      [&](grpc::ClientContext* ctx) { return stub->SystemSharedMemoryStatus(ctx, req, &resp); }));
  std::vector<RegionInfo> out;
  for (const auto& [n, r] : resp.regions()) {
    out.push_back({r.name(), r.key(), r.offset(), r.byte_size(), r.writable()});
  }
  std::sort(out.begin(), out.end(),
            [](const RegionInfo& a, const RegionInfo& b) { return a.name < b.name; });
  return out;
}

absl::StatusOr<ShmCompressResult> Client::CompressShm(absl::string_view spec,
                                                      absl::Span<const ShmTensor> tensors,
                                                      const RegionSlice& output,
                                                      uint64_t block_tokens) {
  pb::CompressRequest req;
  req.set_codec(std::string(spec));
  req.set_block_tokens(block_tokens);
  ToProto(output, req.mutable_output());
  for (const ShmTensor& t : tensors) {
    pb::Tensor* in = req.add_tensors();
    MetaToProto(t.name, t.meta, in);
    ToProto(t.bytes, in->mutable_shm());
  }
  pb::CompressResponse resp;
  pb::KVCompressor::Stub* stub = impl_->stub();
  KV_RETURN_IF_ERROR(ShmCall(options_, impl_->shm.get(), "Compress", [&](grpc::ClientContext* ctx) {
    resp.Clear();
    return stub->Compress(ctx, req, &resp);
  }));
  if (resp.tensors_size() != req.tensors_size()) {
    return absl::DataLossError(absl::StrCat("Compress: server returned ", resp.tensors_size(),
                                            " tensors for ", req.tensors_size()));
  }
  ShmCompressResult out;
  for (const pb::CompressedTensor& t : resp.tensors()) {
    out.tensors.push_back({t.name(), FromProto(t.shm()), ReportFromProto(t.report())});
  }
  out.totals = TotalsFromProto(resp.totals());
  return out;
}

absl::StatusOr<std::vector<ShmDecompressed>> Client::DecompressShm(
    absl::Span<const ShmFrame> frames, const RegionSlice& output) {
  pb::DecompressRequest req;
  ToProto(output, req.mutable_output());
  for (const ShmFrame& f : frames) {
    pb::CompressedTensor* in = req.add_tensors();
    in->set_name(f.name);
    ToProto(f.frame, in->mutable_shm());
  }
  pb::DecompressResponse resp;
  pb::KVCompressor::Stub* stub = impl_->stub();
  KV_RETURN_IF_ERROR(
      ShmCall(options_, impl_->shm.get(), "Decompress", [&](grpc::ClientContext* ctx) {
        resp.Clear();
        return stub->Decompress(ctx, req, &resp);
      }));
  if (resp.tensors_size() != req.tensors_size()) {
    return absl::DataLossError(absl::StrCat("Decompress: server returned ", resp.tensors_size(),
                                            " tensors for ", req.tensors_size()));
  }
  std::vector<ShmDecompressed> out;
  for (const pb::Tensor& t : resp.tensors()) {
    ShmDecompressed& d = out.emplace_back();
    d.name = t.name();
    KV_ASSIGN_OR_RETURN(d.meta.dtype, ParseDType(t.datatype()));
    d.meta.layer = t.layer();
    d.meta.kind = KindFromProto(t.kind());
    d.meta.layout =
        t.layout() == pb::TENSOR_LAYOUT_TOKEN_MAJOR ? Layout::kTokenMajor : Layout::kHeadMajor;
    d.meta.shape.assign(t.shape().begin(), t.shape().end());
    d.bytes = FromProto(t.shm());
    if (!d.meta.Validate().ok() || d.bytes.byte_size != d.meta.NumBytes()) {
      return absl::DataLossError(absl::StrCat("Decompress: server placed tensor '", t.name(),
                                              "' in ", d.bytes.byte_size, " bytes"));
    }
  }
  return out;
}

}  // namespace kvcomp::client

#include "kvcomp_client.h"

#include <chrono>
#include <cmath>
#include <random>
#include <thread>

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "io/file_util.h"
#include "kvcomp/status_macros.h"
#include "kvcomp/v1/kvcomp.grpc.pb.h"

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

}  // namespace

void ToProto(const io::NamedTensor& t, pb::Tensor* out) {
  const TensorMeta& m = t.tensor.meta;
  out->set_name(t.name);
  out->set_layer(m.layer);
  out->set_kind(KindToProto(m.kind));
  out->set_datatype(std::string(DTypeName(m.dtype)));
  for (int64_t d : m.shape) out->add_shape(d);
  out->set_layout(m.layout == Layout::kTokenMajor ? pb::TENSOR_LAYOUT_TOKEN_MAJOR
                                                  : pb::TENSOR_LAYOUT_HEAD_MAJOR);
  out->set_raw_contents(t.tensor.bytes.data(), t.tensor.bytes.size());
}

// Response checks and conversions shared by the sync and async calls.
absl::StatusOr<CompressResult> CompressResultFromProto(int request_tensors,
                                                       const pb::CompressResponse& resp);
absl::StatusOr<io::KvCache> KvCacheFromProto(int request_tensors,
                                             const pb::DecompressResponse& resp);

struct Client::Impl {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<pb::KVCompressor::Stub> stub;
  std::unique_ptr<grpc::GenericStub> generic;
  InFlightCalls async_calls;
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
  auto impl = std::make_unique<Impl>();
  impl->channel = grpc::CreateCustomChannel(target, creds, args);
  if (!impl->channel) return absl::InvalidArgumentError(absl::StrCat("bad target ", target));
  if (options.connect_timeout > absl::ZeroDuration()) {
    const auto deadline =
        std::chrono::system_clock::now() + absl::ToChronoNanoseconds(options.connect_timeout);
    if (!impl->channel->WaitForConnected(deadline)) {
      return absl::UnavailableError(absl::StrCat("cannot connect to ", target, " within ",
                                                 absl::FormatDuration(options.connect_timeout)));
    }
  }
  impl->stub = pb::KVCompressor::NewStub(impl->channel);
  impl->generic = std::make_unique<grpc::GenericStub>(impl->channel);
  return std::unique_ptr<Client>(new Client(target, options, std::move(impl)));
}

absl::StatusOr<CompressResult> Client::Compress(absl::string_view spec,
                                                absl::Span<const io::NamedTensor> tensors) {
  pb::CompressRequest req;
  req.set_codec(std::string(spec));
  for (const io::NamedTensor& t : tensors) ToProto(t, req.add_tensors());
  KV_RETURN_IF_ERROR(CheckRequestSize(req, options_, "Compress"));
  pb::CompressResponse resp;
  KV_RETURN_IF_ERROR(FromGrpc(
      WithRetry(options_,
                [&](grpc::ClientContext* ctx) { return impl_->stub->Compress(ctx, req, &resp); }),
      "Compress"));
  return CompressResultFromProto(req.tensors_size(), resp);
}

void Client::CompressAsync(absl::string_view spec, absl::Span<const io::NamedTensor> tensors,
                           CompressCallback done) {
  pb::CompressRequest req;
  req.set_codec(std::string(spec));
  for (const io::NamedTensor& t : tensors) ToProto(t, req.add_tensors());
  if (absl::Status s = CheckRequestSize(req, options_, "Compress"); !s.ok()) {
    done(s);
    return;
  }
  pb::KVCompressor::Stub* stub = impl_->stub.get();
  const int n = req.tensors_size();
  AsyncCall<pb::CompressRequest, pb::CompressResponse>::Run(
      &impl_->async_calls, options_, std::move(req),
      [stub](grpc::ClientContext* ctx, const pb::CompressRequest* rq, pb::CompressResponse* rs,
             std::function<void(grpc::Status)> cb) {
        stub->async()->Compress(ctx, rq, rs, std::move(cb));
      },
      [n, done = std::move(done)](const grpc::Status& s, pb::CompressResponse& resp) {
        if (!s.ok()) {
          done(FromGrpc(s, "Compress"));
        } else {
          done(CompressResultFromProto(n, resp));
        }
      });
}

absl::StatusOr<CompressResult> CompressResultFromProto(int request_tensors,
                                                       const pb::CompressResponse& resp) {
  if (resp.tensors_size() != request_tensors) {
    return absl::DataLossError(absl::StrCat("Compress: server returned ", resp.tensors_size(),
                                            " tensors for ", request_tensors));
  }
  CompressResult out;
  out.tensors.reserve(resp.tensors_size());
  for (const pb::CompressedTensor& t : resp.tensors()) {
    CompressedTensor c;
    c.name = t.name();
    c.frame.assign(t.frame().begin(), t.frame().end());
    c.report = ReportFromProto(t.report());
    out.tensors.push_back(std::move(c));
  }
  out.totals = TotalsFromProto(resp.totals());
  return out;
}

absl::StatusOr<io::KvCache> Client::Decompress(absl::Span<const FrameRef> frames) {
  pb::DecompressRequest req;
  for (const FrameRef& f : frames) {
    pb::CompressedTensor* t = req.add_tensors();
    t->set_name(f.name);
    t->set_frame(f.frame.data(), f.frame.size());
  }
  KV_RETURN_IF_ERROR(CheckRequestSize(req, options_, "Decompress"));
  pb::DecompressResponse resp;
  KV_RETURN_IF_ERROR(FromGrpc(
      WithRetry(options_,
                [&](grpc::ClientContext* ctx) { return impl_->stub->Decompress(ctx, req, &resp); }),
      "Decompress"));
  return KvCacheFromProto(req.tensors_size(), resp);
}

void Client::DecompressAsync(absl::Span<const FrameRef> frames, DecompressCallback done) {
  pb::DecompressRequest req;
  for (const FrameRef& f : frames) {
    pb::CompressedTensor* t = req.add_tensors();
    t->set_name(f.name);
    t->set_frame(f.frame.data(), f.frame.size());
  }
  if (absl::Status s = CheckRequestSize(req, options_, "Decompress"); !s.ok()) {
    done(s);
    return;
  }
  pb::KVCompressor::Stub* stub = impl_->stub.get();
  const int n = req.tensors_size();
  AsyncCall<pb::DecompressRequest, pb::DecompressResponse>::Run(
      &impl_->async_calls, options_, std::move(req),
      [stub](grpc::ClientContext* ctx, const pb::DecompressRequest* rq, pb::DecompressResponse* rs,
             std::function<void(grpc::Status)> cb) {
        stub->async()->Decompress(ctx, rq, rs, std::move(cb));
      },
      [n, done = std::move(done)](const grpc::Status& s, pb::DecompressResponse& resp) {
        if (!s.ok()) {
          done(FromGrpc(s, "Decompress"));
        } else {
          done(KvCacheFromProto(n, resp));
        }
      });
}

absl::StatusOr<io::KvCache> KvCacheFromProto(int request_tensors,
                                             const pb::DecompressResponse& resp) {
  if (resp.tensors_size() != request_tensors) {
    return absl::DataLossError(absl::StrCat("Decompress: server returned ", resp.tensors_size(),
                                            " tensors for ", request_tensors, " frames"));
  }
  io::KvCache out;
  out.reserve(resp.tensors_size());
  for (const pb::Tensor& t : resp.tensors()) {
    KV_ASSIGN_OR_RETURN(io::NamedTensor nt, FromProto(t));
    out.push_back(std::move(nt));
  }
  return out;
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
  KV_RETURN_IF_ERROR(FromGrpc(impl_->stub->Analyze(&ctx, request, &resp), "Analyze"));
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

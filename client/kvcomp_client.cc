#include "client/kvcomp_client.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "client/async_call.h"
#include "client/chunking.h"
#include "client/io/file_util.h"
#include "client/retry.h"
#include "client/shm_region.h"
#include "core/kvcomp/internal/quote.h"
#include "core/kvcomp/internal/status_macros.h"
#include "kvcomp/v1/kvcomp.grpc.pb.h"
#include "proto/kvcomp/v1/convert.h"

namespace kvcomp::client {
namespace {

namespace pb = ::kvcomp::v1;

Totals TotalsFromProto(const pb::Totals& t) {
  return Totals{t.raw_bytes(), t.compressed_bytes(), t.ratio()};
}

// A region's byte range on the wire (kvcomp.v1.SharedMemoryRef), both ways.
void ToProto(const RegionSlice& slice, pb::SharedMemoryRef* out) {
  out->set_region(slice.region);
  out->set_offset(slice.offset);
  out->set_byte_size(slice.byte_size);
}

RegionSlice FromProto(const pb::SharedMemoryRef& ref) {
  return {ref.region(), ref.offset(), ref.byte_size()};
}

}  // namespace

void MetaToProto(const std::string& name, const TensorMeta& meta, pb::Tensor* out) {
  proto::MetaToProto(meta, name, out);
}

void ToProto(const io::NamedTensor& t, pb::Tensor* out) {
  proto::TensorToProto(t.tensor, t.name, out);
}

absl::StatusOr<io::NamedTensor> FromProto(const pb::Tensor& t) {
  // Refuses what the server may not send: an unknown kind, layout or datatype, or bytes that do
  // not match the shape and datatype.
  absl::StatusOr<TensorView> view = proto::ViewFromProto(t);
  if (!view.ok()) {
    return absl::DataLossError(absl::StrCat("server returned a bad tensor ", Quote(t.name()), ": ",
                                            view.status().message()));
  }
  io::NamedTensor out;
  out.name = t.name();
  out.tensor.meta = view->meta();
  out.tensor.bytes.assign(view->bytes().begin(), view->bytes().end());
  return out;
}

absl::StatusOr<TensorReport> ReportFromProto(const pb::TensorReport& r) {
  absl::StatusOr<kvcomp::TensorReport> core = proto::ReportFromProto(r);
  if (!core.ok()) {
    return absl::DataLossError(absl::StrCat("server returned a bad report for ", Quote(r.name()),
                                            ": ", core.status().message()));
  }
  TensorReport out;
  out.name = r.name();
  out.layer = core->meta.layer;
  out.kind = core->meta.kind;
  out.dtype = core->meta.dtype;
  out.shape = std::move(core->meta.shape);
  out.raw_bytes = core->raw_bytes;
  out.compressed_bytes = core->compressed_bytes;
  out.ratio = r.ratio();
  out.codec = std::move(core->spec);
  out.lossless = core->lossless;
  out.error = core->error;
  out.compress_seconds = r.compress_seconds();
  out.decompress_seconds = r.decompress_seconds();
  return out;
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
    for (const pb::TensorReport& r : c.reports()) {
      KV_ASSIGN_OR_RETURN(TensorReport report, ReportFromProto(r));
      a.reports.push_back(std::move(report));
    }
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

absl::StatusOr<std::vector<CatalogueEntry>> Client::ListCodecs() {
  pb::ListCodecsResponse resp;
  grpc::Status status = WithRetry(options_, [&](grpc::ClientContext* ctx) {
    resp.Clear();
    return impl_->stub()->ListCodecs(ctx, pb::ListCodecsRequest(), &resp);
  });
  KV_RETURN_IF_ERROR(FromGrpc(status, "ListCodecs"));
  std::vector<CatalogueEntry> out;
  for (const pb::CodecInfo& c : resp.codecs()) {
    out.push_back(proto::CatalogueEntryFromProto(c));
  }
  return out;
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
    KV_ASSIGN_OR_RETURN(TensorReport report, ReportFromProto(t.report()));
    out.tensors.push_back({t.name(), FromProto(t.shm()), std::move(report)});
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
    // Refuses an unknown kind, layout or datatype, as FromProto does.
    absl::StatusOr<TensorMeta> meta = proto::MetaFromProto(t);
    if (!meta.ok()) {
      return absl::DataLossError(absl::StrCat("server returned a bad tensor ", Quote(t.name()),
                                              ": ", meta.status().message()));
    }
    d.meta = *std::move(meta);
    d.bytes = FromProto(t.shm());
    if (!d.meta.Validate().ok() || d.bytes.byte_size != d.meta.NumBytes()) {
      return absl::DataLossError(absl::StrCat("Decompress: server placed tensor '", t.name(),
                                              "' in ", d.bytes.byte_size, " bytes"));
    }
  }
  return out;
}

}  // namespace kvcomp::client

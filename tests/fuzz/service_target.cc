#include "tests/fuzz/service_target.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <prometheus/registry.h>

#include "core/kvcomp/dtype.h"
#include "kvcomp/v1/kvcomp.grpc.pb.h"
#include "server/grpc_metrics.h"
#include "server/kvcomp_service.h"
#include "server/worker_pool.h"
#include "tests/fuzz/fuzz_input.h"

namespace kvcomp::fuzz {
namespace {

using Clock = std::chrono::steady_clock;

// Small limits, so that programs reach them: four call slots, 1 MiB messages, streams idle
// for 50 ms are ended.
constexpr int kSlots = 4;
constexpr int kMessageBytes = 1 << 20;
constexpr auto kIdleTimeout = std::chrono::milliseconds(50);
constexpr int kMaxSteps = 24;
constexpr int kMaxStreams = 6;
constexpr int kMaxIdleWaits = 2;

const char* const kSpecs[] = {"zstd(3)",
                              "lossless",
                              "bounded(cos=0.999)",
                              "quant(bits=8,group=channel)+zstd(1)",
                              "gear+huff",
                              "uquant(0.01)+qhuff",
                              "mixed(1,zstd(1),bounded(cos=0.99))",
                              "nosuch(1)"};

// The server, started once per process.
class InProcessServer {
 public:
  InProcessServer() : pool_(2), metrics_(registry_, {}) {
    server::KVCompressorService::Options options;
    options.max_decoded_bytes = kMessageBytes;
    options.max_tensor_elements = 1 << 20;
    options.max_concurrent_calls = kSlots;
    options.max_reply_bytes = kMessageBytes;
    options.stream_idle_timeout = kIdleTimeout;
    service_ = std::make_unique<server::KVCompressorService>(&pool_, options);
    grpc::ServerBuilder builder;
    builder.RegisterService(service_.get());
    builder.SetMaxReceiveMessageSize(kMessageBytes);
    builder.SetMaxSendMessageSize(kMessageBytes);
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
    creators.push_back(metrics_.MakeInterceptorFactory());
    builder.experimental().SetInterceptorCreators(std::move(creators));
    server_ = builder.BuildAndStart();
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(-1);
    args.SetMaxSendMessageSize(-1);
    channel_ = server_->InProcessChannel(args);
    stub_ = v1::KVCompressor::NewStub(channel_);
  }

  v1::KVCompressor::Stub& stub() { return *stub_; }
  std::shared_ptr<grpc::Channel> channel() { return channel_; }
  int active_calls() const { return service_->active_calls(); }
  double in_flight() { return metrics_.in_flight().Value(); }

 private:
  server::WorkerPool pool_;
  prometheus::Registry registry_;
  server::GrpcMetrics metrics_;
  std::unique_ptr<server::KVCompressorService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::KVCompressor::Stub> stub_;
};

InProcessServer& Server() {
  static auto* server = new InProcessServer;  // never destroyed: libFuzzer exits with it
  return *server;
}

std::chrono::system_clock::time_point Deadline(int seconds) {
  return std::chrono::system_clock::now() + std::chrono::seconds(seconds);
}

// A small head-major tensor read from the input: dtype, layer -1..2, kind, [heads, tokens,
// dim] with tokens 0..16, then a count and that many of its bytes from the input; the rest of
// its bytes follow a fixed pattern of finite values.
v1::Tensor ReadTensor(InputReader& in) {
  v1::Tensor t;
  const DType dtype = static_cast<DType>(1 + in.U8() % 3);
  t.set_datatype(std::string(DTypeName(dtype)));
  t.set_layer(static_cast<int>(in.U8() % 4) - 1);
  t.set_kind(static_cast<v1::TensorKind>(in.U8() % 3));
  const int heads = 1 + in.U8() % 4, tokens = in.U8() % 17, dim = 1 + in.U8() % 16;
  t.add_shape(heads);
  t.add_shape(tokens);
  t.add_shape(dim);
  const size_t bytes = static_cast<size_t>(heads) * tokens * dim * DTypeSize(dtype);
  const absl::Span<const uint8_t> got = in.Bytes(std::min<size_t>(in.U8(), bytes));
  std::string raw(reinterpret_cast<const char*>(got.data()), got.size());
  for (size_t i = raw.size(); i < bytes; ++i) raw.push_back(static_cast<char>((i * 7) & 0x3f));
  t.set_raw_contents(std::move(raw));
  return t;
}

v1::CompressRequest ReadCompress(InputReader& in) {
  v1::CompressRequest request;
  request.set_codec(kSpecs[in.U8() % std::size(kSpecs)]);
  const int n = 1 + in.U8() % 2;
  for (int i = 0; i < n; ++i) *request.add_tensors() = ReadTensor(in);
  return request;
}

// Frames the program made earlier, one byte perhaps flipped.
v1::DecompressRequest ReadDecompress(InputReader& in, const std::vector<std::string>& frames) {
  v1::DecompressRequest request;
  if (frames.empty()) {
    request.add_tensors()->set_frame(std::string(in.U8() % 64, 'x'));
    return request;
  }
  std::string frame = frames[in.U8() % frames.size()];
  const uint8_t flip = in.U8();
  if (flip % 2 && !frame.empty()) frame[in.U8() % frame.size()] ^= static_cast<char>(flip);
  request.add_tensors()->set_frame(std::move(frame));
  return request;
}

v1::AnalyzeRequest ReadAnalyze(InputReader& in) {
  v1::AnalyzeRequest request;
  request.add_codecs(kSpecs[in.U8() % std::size(kSpecs)]);
  *request.add_tensors() = ReadTensor(in);
  const uint8_t options = in.U8();
  if (options & 1) request.mutable_rope_theta()->set_value(10000);
  if (options & 2) request.mutable_k_thresholds()->mutable_cosine()->set_value(in.F64());
  if (options & 4) request.mutable_v_thresholds()->mutable_mae()->set_value(in.F64());
  if (options & 8) request.set_max_tokens(in.U8() % 8);
  return request;
}

// A status a client can act on: no INTERNAL, UNKNOWN or UNAVAILABLE from this server.
void CheckStatus(const grpc::Status& s, const char* what) {
  const grpc::StatusCode c = s.error_code();
  KV_FUZZ_CHECK(c == grpc::StatusCode::OK || c == grpc::StatusCode::INVALID_ARGUMENT ||
                    c == grpc::StatusCode::DATA_LOSS || c == grpc::StatusCode::RESOURCE_EXHAUSTED ||
                    c == grpc::StatusCode::FAILED_PRECONDITION ||
                    c == grpc::StatusCode::CANCELLED || c == grpc::StatusCode::DEADLINE_EXCEEDED,
                what, ": code ", static_cast<int>(c), ": ", s.error_message());
  KV_FUZZ_CHECK(s.error_message().size() <= 4096, what, ": a status message of ",
                s.error_message().size(), " bytes");
}

// One stream of either kind, as the program holds it.
struct ClientStream {
  bool compress = true;
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReaderWriter<v1::CompressRequest, v1::CompressResponse>> c;
  std::unique_ptr<grpc::ClientReaderWriter<v1::DecompressRequest, v1::DecompressResponse>> d;
  int unread = 0;      // chunks written whose answers were not read
  bool ended = false;  // a Write or Read failed: only Finish is left

  grpc::Status Finish() { return compress ? c->Finish() : d->Finish(); }
};

void Step(InputReader& in, std::vector<std::unique_ptr<ClientStream>>& streams,
          std::vector<std::string>& frames, int& idle_waits) {
  InProcessServer& server = Server();
  const uint8_t op = in.U8() % 10;
  auto stream_at = [&]() -> ClientStream* {
    if (streams.empty()) return nullptr;
    return streams[in.U8() % streams.size()].get();
  };
  auto close = [&](ClientStream* s, bool cancel) {
    if (cancel) s->context.TryCancel();
    if (!cancel && !s->ended) {
      if (s->compress) {
        s->c->WritesDone();
        v1::CompressResponse r;
        while (s->c->Read(&r)) {
        }
      } else {
        s->d->WritesDone();
        v1::DecompressResponse r;
        while (s->d->Read(&r)) {
        }
      }
    }
    CheckStatus(s->Finish(), "stream");
    for (auto it = streams.begin(); it != streams.end(); ++it) {
      if (it->get() == s) {
        streams.erase(it);
        break;
      }
    }
  };
  switch (op) {
    case 0: {
      const v1::CompressRequest request = ReadCompress(in);
      v1::CompressResponse response;
      grpc::ClientContext context;
      context.set_deadline(Deadline(20));
      const grpc::Status s = server.stub().Compress(&context, request, &response);
      CheckStatus(s, "Compress");
      for (const auto& t : response.tensors()) frames.push_back(t.frame());
      return;
    }
    case 1: {
      const v1::DecompressRequest request = ReadDecompress(in, frames);
      v1::DecompressResponse response;
      grpc::ClientContext context;
      context.set_deadline(Deadline(20));
      CheckStatus(server.stub().Decompress(&context, request, &response), "Decompress");
      return;
    }
    case 2: {
      const v1::AnalyzeRequest request = ReadAnalyze(in);
      v1::AnalyzeResponse response;
      grpc::ClientContext context;
      context.set_deadline(Deadline(20));
      CheckStatus(server.stub().Analyze(&context, request, &response), "Analyze");
      return;
    }
    case 3: {
      if (streams.size() >= kMaxStreams) return;
      auto s = std::make_unique<ClientStream>();
      s->compress = in.U8() % 2 == 0;
      s->context.set_deadline(Deadline(20));
      if (s->compress) {
        s->c = server.stub().CompressStream(&s->context);
      } else {
        s->d = server.stub().DecompressStream(&s->context);
      }
      streams.push_back(std::move(s));
      return;
    }
    case 4: {
      ClientStream* s = stream_at();
      if (s == nullptr || s->ended || s->unread > 0) return;  // lock-step, as clients are
      const bool written =
          s->compress ? s->c->Write(ReadCompress(in)) : s->d->Write(ReadDecompress(in, frames));
      if (written) {
        ++s->unread;
      } else {
        s->ended = true;
      }
      return;
    }
    case 5: {
      ClientStream* s = stream_at();
      if (s == nullptr || s->ended || s->unread == 0) return;
      bool read;
      if (s->compress) {
        v1::CompressResponse r;
        read = s->c->Read(&r);
        for (const auto& t : r.tensors()) frames.push_back(t.frame());
      } else {
        v1::DecompressResponse r;
        read = s->d->Read(&r);
      }
      if (read) {
        --s->unread;
      } else {
        s->ended = true;
      }
      return;
    }
    case 6:
    case 7: {
      if (ClientStream* s = stream_at()) close(s, op == 7);
      return;
    }
    case 8: {
      if (idle_waits++ >= kMaxIdleWaits) return;
      std::this_thread::sleep_for(kIdleTimeout + std::chrono::milliseconds(20));
      return;
    }
    case 9: {
      grpc::GenericStub generic(server.channel());
      grpc::Slice slice(std::string(in.U8() % 8, 'x'));
      grpc::ByteBuffer request(&slice, 1), response;
      grpc::ClientContext context;
      context.set_deadline(Deadline(20));
      grpc::CompletionQueue cq;
      auto call =
          generic.PrepareUnaryCall(&context, "/kvcomp.v1.KVCompressor/NoSuchMethod", request, &cq);
      call->StartCall();
      grpc::Status status;
      call->Finish(&response, &status, reinterpret_cast<void*>(1));
      void* tag;
      bool ok;
      KV_FUZZ_CHECK(cq.Next(&tag, &ok), "unknown method: no completion");
      cq.Shutdown();
      while (cq.Next(&tag, &ok)) {
      }
      KV_FUZZ_CHECK(status.error_code() == grpc::StatusCode::UNIMPLEMENTED, "unknown method: code ",
                    static_cast<int>(status.error_code()));
      return;
    }
  }
}

}  // namespace

void FuzzServiceSequence(absl::Span<const uint8_t> data) {
  InProcessServer& server = Server();
  InputReader in(data);
  std::vector<std::unique_ptr<ClientStream>> streams;
  std::vector<std::string> frames;
  int idle_waits = 0;
  for (int i = 0; i < kMaxSteps && in.remaining() > 0; ++i) Step(in, streams, frames, idle_waits);
  // Whatever is still open is cancelled; then every slot must come back.
  for (auto& s : streams) {
    s->context.TryCancel();
    CheckStatus(s->Finish(), "stream at the end");
  }
  streams.clear();
  // A stream the client cancelled may reach its reactor late and hold a slot for a moment, so
  // the slots must come back, and a probe be served, within 10 s.
  v1::CompressRequest probe;
  probe.set_codec("zstd(1)");
  v1::Tensor* t = probe.add_tensors();
  t->set_datatype("FP16");
  t->add_shape(1);
  t->add_shape(4);
  t->add_shape(2);
  t->set_raw_contents(std::string(16, '\x3c'));
  const auto until = Clock::now() + std::chrono::seconds(10);
  grpc::Status s;
  do {
    if (server.active_calls() > 0 || server.in_flight() > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      continue;
    }
    v1::CompressResponse response;
    grpc::ClientContext context;
    context.set_deadline(Deadline(20));
    s = server.stub().Compress(&context, probe, &response);
    if (s.ok()) return;
    KV_FUZZ_CHECK(s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED,
                  "probe after the program: code ", static_cast<int>(s.error_code()), ": ",
                  s.error_message());
  } while (Clock::now() < until);
  KV_FUZZ_CHECK(false, "10 s after every call ended: ", server.active_calls(), " call slots held, ",
                server.in_flight(), " calls in flight, probe: ", s.error_message());
}

std::vector<std::vector<uint8_t>> ServiceSeeds() {
  // Ops: 0 Compress, 1 Decompress, 2 Analyze, 3 open, 4 write, 5 read, 6 half-close, 7 cancel,
  // 8 idle, 9 unknown method. Tensor: dtype, layer, kind, heads, tokens, dim, bytes.
  const std::vector<uint8_t> tensor = {1, 1, 1, 1, 4, 7, 0};  // FP16 layer 0 K [2, 4, 8]
  auto program = [&](std::initializer_list<std::vector<uint8_t>> steps) {
    std::vector<uint8_t> out;
    for (const auto& s : steps) out.insert(out.end(), s.begin(), s.end());
    return out;
  };
  auto with_tensor = [&](std::vector<uint8_t> head) {
    head.insert(head.end(), tensor.begin(), tensor.end());
    return head;
  };
  return {
      program({with_tensor({0, 0, 0}), {1, 0, 0}}),                  // compress, decompress
      program({with_tensor({2, 2}), {0}}),                           // analyze bounded
      program({with_tensor({2, 0}), {1}}),                           // analyze with RoPE
      program({{3, 0}, with_tensor({4, 0, 1, 0}), {5, 0}, {6, 0}}),  // a compress stream
      program({with_tensor({0, 0, 0}), {3, 1}, {4, 0, 0, 0}, {5, 0}, {6, 0}}),  // decompress one
      program({{3, 0}, {3, 1}, {3, 0}, {3, 1}, {3, 0}, {8}, with_tensor({0, 0, 0})}),  // slots
      program({{3, 0}, with_tensor({4, 0, 1, 0}), {8}, {7, 0}}),  // an answer never read
      program({{3, 1}, {7, 0}, {9, 3}}),                          // cancel, unknown method
  };
}

}  // namespace kvcomp::fuzz

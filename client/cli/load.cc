// kvcomp load: a gRPC load tester for KVCompressor/Compress (what ghz does, which Debian does
// not package). Closed loop (--concurrency callers, each sending its next request when the
// last one returns) or open loop (--rps: Poisson arrivals, at most --concurrency in flight;
// latency counts from the scheduled arrival, so queueing behind a slow server shows up).
// Bounded by --duration and --requests, whichever comes first; in-flight calls are awaited.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <iostream>
#include <map>
#include <mutex>
#include <random>

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/cli/common.h"
#include "client/cli/workload.h"
#include "client/shm_region.h"
#include "core/kvcomp/internal/status_macros.h"
#include "kvcomp/v1/kvcomp.grpc.pb.h"

namespace kvcomp::cli {
namespace {

namespace pb = ::kvcomp::v1;
using Clock = std::chrono::steady_clock;

struct LoadFlags {
  std::string server = "127.0.0.1:50051";
  int concurrency = 8;
  double rps = 0;  // 0: closed loop
  double duration_seconds = 10;
  int64_t requests = 0;  // 0: only the duration bounds it
  std::string codec = "lossless";
  std::string data = "llama:layers=1,heads=8,dim=128,tokens=512";
  int connections = 1;
  std::string lb_policy;  // empty: gRPC's default (pick_first)
  double bad_fraction = 0;
  bool bad_frames = false;  // half the bad requests: a corrupt frame to Decompress
  double timeout_seconds = 30;
  uint64_t seed = 1;
  bool json = false;
  // The server's shared-memory socket: tensors go as region references, frames come back into
  // a region (one window per call in flight), so no tensor byte crosses gRPC.
  std::string shm;
};

const char* CodeName(int code) {
  static constexpr const char* kNames[] = {"OK",
                                           "CANCELLED",
                                           "UNKNOWN",
                                           "INVALID_ARGUMENT",
                                           "DEADLINE_EXCEEDED",
                                           "NOT_FOUND",
                                           "ALREADY_EXISTS",
                                           "PERMISSION_DENIED",
                                           "RESOURCE_EXHAUSTED",
                                           "FAILED_PRECONDITION",
                                           "ABORTED",
                                           "OUT_OF_RANGE",
                                           "UNIMPLEMENTED",
                                           "INTERNAL",
                                           "UNAVAILABLE",
                                           "DATA_LOSS",
                                           "UNAUTHENTICATED"};
  return code >= 0 && code <= 16 ? kNames[code] : "UNKNOWN";
}

// Everything measured, guarded by `mu`.
struct Results {
  std::mutex mu;
  std::vector<double> latency_ms;
  std::map<std::string, int64_t> codes;
  uint64_t ok_raw_bytes = 0;
  std::map<std::string, int64_t> bad_sent;  // by the code each bad kind must get
  void Record(double ms, int code, uint64_t raw, const char* bad_code) {
    std::lock_guard<std::mutex> lock(mu);
    latency_ms.push_back(ms);
    ++codes[CodeName(code)];
    if (code == 0) ok_raw_bytes += raw;
    if (bad_code != nullptr) ++bad_sent[bad_code];
  }
};

// Requests are serialised once and sent as byte buffers through a generic stub, responses
// kept as bytes: the load generator shares the machine with the server it measures, so it does
// no per-call protobuf work on the 1 MiB messages.
struct Workload {
  // Compress, one tensor each; with --shm, one set per output window (slot): good[slot * n + k].
  std::vector<grpc::ByteBuffer> good;
  grpc::ByteBuffer bad;        // Compress under a codec spec the server must reject
  grpc::ByteBuffer bad_frame;  // --bad-frames: Decompress of a frame with a flipped byte
  std::vector<uint64_t> raw;
  std::string shm_token;  // --shm: the session every call names
};

template <typename Message>
absl::StatusOr<grpc::ByteBuffer> Serialized(const Message& m) {
  grpc::ByteBuffer out;
  bool own = false;
  const grpc::Status s = grpc::SerializationTraits<Message>::Serialize(m, &out, &own);
  if (!s.ok()) return absl::InvalidArgumentError("serialising a request: " + s.error_message());
  return out;
}

std::string MethodPath(const char* method) {
  return absl::StrCat("/", pb::KVCompressor::service_full_name(), "/", method);
}

class Sender {
 public:
  Sender(const LoadFlags& f, const Workload& w)
      : f_(f),
        w_(w),
        rng_(f.seed),
        compress_(MethodPath("Compress")),
        decompress_(MethodPath("Decompress")) {
    for (int i = 0; i < f.connections; ++i) {
      grpc::ChannelArguments args;
      args.SetMaxReceiveMessageSize(-1);
      args.SetMaxSendMessageSize(-1);
      args.SetInt("kvcomp.load.connection", i);  // distinct args: a channel (TCP) of its own
      if (!f.lb_policy.empty()) args.SetLoadBalancingPolicyName(f.lb_policy);
      channels_.push_back(
          grpc::CreateCustomChannel(f.server, grpc::InsecureChannelCredentials(), args));
      stubs_.push_back(std::make_unique<grpc::GenericStub>(channels_.back()));
    }
  }

  // The i-th request: its method and bytes, its raw tensor bytes (0 for a bad one), the code a
  // bad one must get (null for a good one) and its stub.
  struct Pick {
    const std::string* method;
    const grpc::ByteBuffer* req;
    uint64_t raw;
    grpc::GenericStub* stub;
    const char* bad_code = nullptr;
  };
  Pick Next(int64_t i, int slot) {
    bool bad = false, frame = false;
    {
      std::lock_guard<std::mutex> lock(rng_mu_);
      bad = f_.bad_fraction > 0 &&
            std::uniform_real_distribution<double>(0, 1)(rng_) < f_.bad_fraction;
      frame = bad && f_.bad_frames && std::bernoulli_distribution(0.5)(rng_);
    }
    grpc::GenericStub* stub = stubs_[static_cast<size_t>(i) % stubs_.size()].get();
    if (frame) return {&decompress_, &w_.bad_frame, 0, stub, "DATA_LOSS"};
    if (bad) return {&compress_, &w_.bad, 0, stub, "INVALID_ARGUMENT"};
    const size_t k = static_cast<size_t>(i) % w_.raw.size();
    // Without --shm every caller sends the same bytes; with it, each writes its own window.
    const size_t set = w_.shm_token.empty() ? 0 : static_cast<size_t>(slot);
    return {&compress_, &w_.good[set * w_.raw.size() + k], w_.raw[k], stub};
  }
  // One call on a completion queue: its pick, when it was due, and what Finish fills in.
  struct Call {
    Pick pick;
    int slot = 0;  // --shm: the output window it writes
    Clock::time_point due;
    grpc::ClientContext ctx;
    grpc::ByteBuffer resp;
    grpc::Status status;
    std::unique_ptr<grpc::ClientAsyncResponseReader<grpc::ByteBuffer>> reader;
  };
  // Starts `c`; `cq` delivers `c` itself as the tag when it has finished. The caller keeps `c`
  // (and its context) alive until then, and no callback thread of gRPC's ever touches it: a
  // context freed on such a thread raced the channels' end (an ASan double free).
  void Start(Call* c, grpc::CompletionQueue* cq) const {
    c->ctx.set_deadline(Deadline());
    if (!w_.shm_token.empty()) c->ctx.AddMetadata("kvcomp-shm-session", w_.shm_token);
    c->reader = c->pick.stub->PrepareUnaryCall(&c->ctx, *c->pick.method, *c->pick.req, cq);
    c->reader->StartCall();
    c->reader->Finish(&c->resp, &c->status, c);
  }
  const std::shared_ptr<grpc::Channel>& channel0() const { return channels_[0]; }
  std::chrono::system_clock::time_point Deadline() const {
    return std::chrono::system_clock::now() +
           std::chrono::microseconds(static_cast<int64_t>(f_.timeout_seconds * 1e6));
  }
  double NextGap() {
    std::lock_guard<std::mutex> lock(rng_mu_);
    return std::exponential_distribution<double>(f_.rps)(rng_);
  }

 private:
  const LoadFlags& f_;
  const Workload& w_;
  std::mutex rng_mu_;
  std::mt19937_64 rng_;
  const std::string compress_, decompress_;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::vector<std::unique_ptr<grpc::GenericStub>> stubs_;
};

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

void RecordCall(const Sender::Call& c, Results* res) {
  res->Record(Ms(Clock::now() - c.due), c.status.error_code(), c.pick.raw, c.pick.bad_code);
}

// Each caller thread waits on a completion queue of its own for its one call at a time.
void RunClosed(const LoadFlags& f, Sender& sender, Clock::time_point end, Results* res,
               std::atomic<int64_t>* issued) {
  std::vector<std::thread> threads;
  for (int t = 0; t < f.concurrency; ++t) {
    threads.emplace_back([&, t] {
      grpc::CompletionQueue cq;
      while (Clock::now() < end) {
        const int64_t i = issued->fetch_add(1);
        if (f.requests > 0 && i >= f.requests) break;
        Sender::Call c;
        c.pick = sender.Next(i, t);
        c.due = Clock::now();
        sender.Start(&c, &cq);
        void* tag = nullptr;
        bool ok = false;
        cq.Next(&tag, &ok);  // c's Finish: the queue's only event
        RecordCall(c, res);
      }
      cq.Shutdown();  // empty by now; gRPC wants it shut down and drained before it goes
      void* tag = nullptr;
      bool ok = false;
      while (cq.Next(&tag, &ok)) {
      }
    });
  }
  for (auto& t : threads) t.join();
}

// The main thread issues calls at Poisson arrival times; one thread takes every finished call
// off a shared completion queue, records it and frees it.
void RunOpen(const LoadFlags& f, Sender& sender, Clock::time_point start, Clock::time_point end,
             Results* res, std::atomic<int64_t>* issued) {
  std::mutex mu;
  std::condition_variable cv;
  int in_flight = 0;
  std::vector<int> free_slots;  // --shm windows no call in flight writes
  for (int s = f.concurrency - 1; s >= 0; --s) free_slots.push_back(s);
  grpc::CompletionQueue cq;
  std::thread finisher([&] {
    void* tag = nullptr;
    bool ok = false;
    while (cq.Next(&tag, &ok)) {
      std::unique_ptr<Sender::Call> call(static_cast<Sender::Call*>(tag));
      RecordCall(*call, res);
      const int slot = call->slot;
      call.reset();
      std::lock_guard<std::mutex> lock(mu);
      --in_flight;
      free_slots.push_back(slot);
      cv.notify_all();
    }
  });
  Clock::time_point next = start;
  for (int64_t i = 0; f.requests == 0 || i < f.requests; ++i) {
    next += std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(sender.NextGap()));
    if (next >= end) break;
    std::this_thread::sleep_until(next);
    int slot = 0;
    {
      std::unique_lock<std::mutex> lock(mu);
      // Queue behind the concurrency cap; the wait counts in the latency (from `next`).
      if (!cv.wait_until(lock, end, [&] { return in_flight < f.concurrency; })) break;
      ++in_flight;
      slot = free_slots.back();
      free_slots.pop_back();
    }
    issued->fetch_add(1);
    auto call = std::make_unique<Sender::Call>();
    call->slot = slot;
    call->pick = sender.Next(i, slot);
    call->due = next;
    sender.Start(call.release(), &cq);
  }
  cq.Shutdown();  // the finisher drains every call still in flight, then ends
  finisher.join();
}

// --shm: the workload's tensors in one region, and one output window per call that may be in
// flight (each caller's own), both registered for the session the load's calls name.
struct ShmWorkload {
  std::unique_ptr<client::ShmSession> session;
  std::unique_ptr<client::SharedMemoryRegion> in, out;
  pb::CompressRequest first;  // the first tensor's request, for --bad-frames

  static uint64_t Aligned(uint64_t n) { return (n + 63) / 64 * 64; }

  absl::Status Make(const LoadFlags& f, const io::KvCache& cache, Workload* w) {
    KV_ASSIGN_OR_RETURN(session, client::ShmSession::Connect(f.shm));
    w->shm_token = session->token();
    uint64_t in_bytes = 0, window = 0;
    for (const io::NamedTensor& t : cache) {
      in_bytes += Aligned(t.tensor.bytes.size());
      // A frame is at most a little over its tensor (raw fallback, headers, tables).
      window = std::max(window, Aligned(t.tensor.bytes.size() + t.tensor.bytes.size() / 8 + 65536));
    }
    KV_ASSIGN_OR_RETURN(
        in, client::SharedMemoryRegion::Create("load-in", std::max<uint64_t>(in_bytes, 64)));
    KV_ASSIGN_OR_RETURN(out, client::SharedMemoryRegion::Create(
                                 "load-out", window * static_cast<uint64_t>(f.concurrency)));
    std::vector<uint64_t> offsets;
    uint64_t at = 0;
    for (const io::NamedTensor& t : cache) {
      offsets.push_back(at);
      if (!t.tensor.bytes.empty()) {
        std::memcpy(in->bytes().data() + at, t.tensor.bytes.data(), t.tensor.bytes.size());
      }
      at += Aligned(t.tensor.bytes.size());
      w->raw.push_back(t.tensor.bytes.size());
    }
    for (const auto* region : {in.get(), out.get()}) {
      KV_RETURN_IF_ERROR(Register(f, *region, w->shm_token));
    }
    for (int slot = 0; slot < f.concurrency; ++slot) {
      for (size_t k = 0; k < cache.size(); ++k) {
        pb::CompressRequest req;
        req.set_codec(f.codec);
        pb::Tensor* t = req.add_tensors();
        client::MetaToProto(cache[k].name, cache[k].tensor.meta, t);
        t->mutable_shm()->set_region(in->name());
        t->mutable_shm()->set_offset(offsets[k]);
        t->mutable_shm()->set_byte_size(cache[k].tensor.bytes.size());
        req.mutable_output()->set_region(out->name());
        req.mutable_output()->set_offset(window * static_cast<uint64_t>(slot));
        req.mutable_output()->set_byte_size(window);
        KV_ASSIGN_OR_RETURN(grpc::ByteBuffer bytes, Serialized(req));
        w->good.push_back(std::move(bytes));
        if (slot == 0 && k == 0) first = req;
      }
    }
    return absl::OkStatus();
  }

  absl::Status Register(const LoadFlags& f, const client::SharedMemoryRegion& region,
                        const std::string& token) {
    KV_ASSIGN_OR_RETURN(const std::string key, session->PassFd(region.fd()));
    pb::SystemSharedMemoryRegisterRequest req;
    req.set_name(region.name());
    req.set_key(key);
    req.set_byte_size(region.bytes().size());
    pb::SystemSharedMemoryRegisterResponse resp;
    grpc::ClientContext ctx;
    ctx.AddMetadata("kvcomp-shm-session", token);
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::microseconds(static_cast<int64_t>(f.timeout_seconds * 1e6)));
    auto stub = pb::KVCompressor::NewStub(
        grpc::CreateChannel(f.server, grpc::InsecureChannelCredentials()));
    const grpc::Status s = stub->SystemSharedMemoryRegister(&ctx, req, &resp);
    if (!s.ok()) {
      return absl::Status(
          static_cast<absl::StatusCode>(s.error_code()),
          absl::StrCat("registering region ", region.name(), ": ", s.error_message()));
    }
    return absl::OkStatus();
  }
};

int RunLoad(const LoadFlags& f) {
  constexpr absl::string_view kCmd = "load";
  std::string description;
  auto cache = LoadWorkload(f.data, &description);
  if (!cache.ok()) return Fail(kCmd, kExitInput, cache.status());
  Workload w;
  pb::CompressRequest first;
  ShmWorkload shm;
  if (!f.shm.empty()) {
    absl::Status s = shm.Make(f, *cache, &w);
    if (!s.ok()) return Fail(kCmd, kExitServer, s);
    first = shm.first;
  } else {
    for (const io::NamedTensor& t : *cache) {
      pb::CompressRequest req;
      req.set_codec(f.codec);
      client::ToProto(t, req.add_tensors());
      auto bytes = Serialized(req);
      if (!bytes.ok()) return Fail(kCmd, kExitInput, bytes.status());
      w.raw.push_back(t.tensor.bytes.size());
      w.good.push_back(*std::move(bytes));
      if (w.good.size() == 1) first = std::move(req);
    }
  }
  // Deliberately bad: the first tensor under a spec that cannot parse (INVALID_ARGUMENT).
  pb::CompressRequest bad = first;
  bad.set_codec("no-such-codec(");
  auto bad_bytes = Serialized(bad);
  if (!bad_bytes.ok()) return Fail(kCmd, kExitInput, bad_bytes.status());
  w.bad = *std::move(bad_bytes);

  Sender sender(f, w);
  if (f.bad_frames) {  // a real frame of the first tensor, one payload byte flipped
    grpc::ClientContext ctx;
    ctx.set_deadline(sender.Deadline());
    pb::CompressResponse resp;
    // The frame inline, whatever --shm says: it is corrupted and sent back as bytes.
    pb::CompressRequest inline_first = first;
    inline_first.clear_output();
    if (!f.shm.empty()) ctx.AddMetadata("kvcomp-shm-session", w.shm_token);
    grpc::Status s =
        pb::KVCompressor::NewStub(sender.channel0())->Compress(&ctx, inline_first, &resp);
    if (!s.ok() || resp.tensors_size() == 0) {
      return Fail(kCmd, kExitServer,
                  absl::UnavailableError(
                      absl::StrCat("compressing the --bad-frames frame: ", s.error_message())));
    }
    pb::DecompressRequest bad_frame;
    pb::CompressedTensor* t = bad_frame.add_tensors();
    *t = resp.tensors(0);
    (*t->mutable_frame())[t->frame().size() / 2] ^= 0x5a;
    auto frame_bytes = Serialized(bad_frame);
    if (!frame_bytes.ok()) return Fail(kCmd, kExitInput, frame_bytes.status());
    w.bad_frame = *std::move(frame_bytes);
  }
  Results res;
  std::atomic<int64_t> issued{0};
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration_cast<Clock::duration>(
                               std::chrono::duration<double>(f.duration_seconds));
  {
    Progress progress("kvcomp load", !f.json, [&] {
      double d = std::chrono::duration<double>(Clock::now() - start).count() / f.duration_seconds;
      if (f.requests > 0) d = std::max(d, static_cast<double>(issued.load()) / f.requests);
      return d;
    });
    if (f.rps > 0) {
      RunOpen(f, sender, start, end, &res, &issued);
    } else {
      RunClosed(f, sender, end, &res, &issued);
    }
  }
  const double wall = std::chrono::duration<double>(Clock::now() - start).count();

  std::vector<double> lat = res.latency_ms;
  std::sort(lat.begin(), lat.end());
  const int64_t n = static_cast<int64_t>(lat.size());
  int64_t errors = 0;
  for (const auto& [code, count] : res.codes) {
    if (code != "OK") errors += count;
  }
  double mean = 0;
  for (double v : lat) mean += v;
  mean = n ? mean / n : 0;
  const std::pair<const char*, double> kQuantiles[] = {
      {"p50", 0.5}, {"p90", 0.9}, {"p95", 0.95}, {"p99", 0.99}, {"p99.9", 0.999}};
  // Histogram: buckets doubling from 0.125 ms, up to the one holding the max.
  std::vector<std::pair<double, int64_t>> hist;
  for (double le = 0.125; hist.empty() || hist.back().first < (lat.empty() ? 0 : lat.back());
       le *= 2) {
    hist.push_back({le, 0});
  }
  for (double v : lat) {
    for (auto& [le, count] : hist) {
      if (v <= le) {
        ++count;
        break;
      }
    }
  }
  const double rps = wall > 0 ? n / wall : 0;
  const double gbps = wall > 0 ? res.ok_raw_bytes / wall / 1e9 : 0;
  if (f.json) {
    nlohmann::ordered_json j;
    j["server"] = f.server;
    j["codec"] = f.codec;
    j["data"] = description;
    j["mode"] = f.rps > 0 ? "open" : "closed";
    j["target_rps"] = f.rps;
    j["concurrency"] = f.concurrency;
    j["connections"] = f.connections;
    j["shm"] = !f.shm.empty();
    j["requests"] = n;
    j["errors"] = errors;
    j["duration_seconds"] = wall;
    j["rps"] = rps;
    j["ok_raw_bytes"] = res.ok_raw_bytes;
    j["raw_gb_per_second"] = gbps;
    nlohmann::ordered_json l;
    for (auto [name, q] : kQuantiles) l[name] = Percentile(lat, q);
    l["max"] = lat.empty() ? 0.0 : lat.back();
    l["mean"] = mean;
    j["latency_ms"] = l;
    nlohmann::ordered_json h = nlohmann::ordered_json::array();
    for (auto [le, count] : hist) h.push_back({{"le_ms", le}, {"count", count}});
    j["histogram"] = h;
    j["status"] = res.codes;
    j["bad_sent"] = res.bad_sent;
    std::cout << j.dump(2) << "\n";
  } else {
    std::cout << absl::StrFormat(
        "kvcomp load: %s, %s loop, concurrency %d, %d connection(s), codec %s\n  data: %s\n",
        f.server, f.rps > 0 ? absl::StrFormat("open (Poisson, %.1f rps)", f.rps) : "closed",
        f.concurrency, f.connections, f.codec, description);
    std::cout << absl::StrFormat(
        "\nrequests   %d in %.2f s (%d errors)\nrps        %.1f\nthroughput %.3f GB/s of raw "
        "data (OK responses)\n\nlatency (ms)\n",
        n, wall, errors, rps, gbps);
    for (auto [name, q] : kQuantiles) {
      std::cout << absl::StrFormat("  %-6s %9.3f\n", name, Percentile(lat, q));
    }
    std::cout << absl::StrFormat("  %-6s %9.3f\n  %-6s %9.3f\n", "max",
                                 lat.empty() ? 0.0 : lat.back(), "mean", mean);
    std::cout << "\nhistogram (ms)\n";
    int64_t peak = 1;
    for (auto [le, count] : hist) peak = std::max(peak, count);
    for (auto [le, count] : hist) {
      std::cout << absl::StrFormat("  <= %9.3f %8d |%s\n", le, count,
                                   std::string(static_cast<size_t>(40 * count / peak), '#'));
    }
    std::cout << "\nstatus codes\n";
    for (const auto& [code, count] : res.codes) {
      std::cout << absl::StrFormat("  %-20s %d\n", code, count);
    }
  }
  if (n == 0) {
    return Fail(kCmd, kExitServer, absl::DeadlineExceededError("no request completed"));
  }
  // Errors the user asked for (--bad-fraction) are not a failure; any other is.
  int64_t expected_bad = 0;
  for (const auto& [code, sent] : res.bad_sent) {
    const auto got = res.codes.find(code);
    expected_bad += std::min(sent, got == res.codes.end() ? int64_t{0} : got->second);
  }
  return errors > expected_bad ? kExitServer : kExitOk;
}

}  // namespace

Command AddLoadCommand(CLI::App& root) {
  auto f = std::make_shared<LoadFlags>();
  CLI::App* app = root.add_subcommand(
      "load",
      "Load-test a server with unary Compress calls (one tensor each): requests, RPS, GB/s, "
      "latency percentiles and histogram, counts per status code. Exit 0 when every call "
      "succeeded (apart from --bad-fraction ones), 3 otherwise");
  AddTargetFlags(app, &f->server, &f->lb_policy);
  app->add_option("-c,--concurrency", f->concurrency,
                  "closed loop: callers; open loop: most calls in flight")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  app->add_option("--rps", f->rps, "open loop at this mean rate (Poisson arrivals); 0: closed loop")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1e6));
  app->add_option("-d,--duration", f->duration_seconds, "stop issuing after this many seconds")
      ->capture_default_str()
      ->check(CLI::Range(0.01, 86400.0));
  app->add_option("-n,--requests", f->requests, "stop after this many requests (0: no limit)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
  app->add_option("--codec", f->codec, "codec spec")->capture_default_str();
  app->add_option("--data", f->data,
                  "dump folder, .npy/.npz/.safetensors file, or a generated shape "
                  "'llama:layers=1,heads=8,dim=128,tokens=512[,dtype=fp16]'")
      ->capture_default_str();
  app->add_option("--connections", f->connections,
                  "gRPC channels (TCP connections) to spread calls over")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  app->add_option("--bad-fraction", f->bad_fraction,
                  "send this fraction of requests with an invalid codec spec (INVALID_ARGUMENT), "
                  "to exercise error paths")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app->add_flag("--bad-frames", f->bad_frames,
                "make half the --bad-fraction requests Decompress calls of a real frame with one "
                "payload byte flipped (DATA_LOSS)");
  app->add_option("--timeout", f->timeout_seconds, "deadline of each call, in seconds")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app->add_option("--seed", f->seed, "seed of the arrival times and bad-request picks")
      ->capture_default_str();
  app->add_option("--shm", f->shm,
                  "the server's shared-memory socket (kvcomp-server --shm-socket): tensors go "
                  "as references to a region and frames come back into one, so no tensor byte "
                  "crosses gRPC");
  app->add_flag("--json", f->json, "print the report as JSON");
  return {app, [f] { return RunLoad(*f); }};
}

}  // namespace kvcomp::cli

// kvcomp load: a gRPC load tester for KVCompressor/Compress (what ghz does, which Debian does
// not package). Closed loop (--concurrency callers, each sending its next request when the
// last one returns) or open loop (--rps: Poisson arrivals, at most --concurrency in flight;
// latency counts from the scheduled arrival, so queueing behind a slow server shows up).
// Bounded by --duration and --requests, whichever comes first; in-flight calls are awaited.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <iostream>
#include <map>
#include <mutex>
#include <random>

#include <grpcpp/grpcpp.h>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/common.h"
#include "cli/workload.h"
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

struct Workload {
  std::vector<pb::CompressRequest> good;  // one tensor each
  pb::CompressRequest bad;                // a codec spec the server must reject
  pb::DecompressRequest bad_frame;        // --bad-frames: a frame with a flipped byte
  std::vector<uint64_t> raw;
};

class Sender {
 public:
  Sender(const LoadFlags& f, const Workload& w) : f_(f), w_(w), rng_(f.seed) {
    for (int i = 0; i < f.connections; ++i) {
      grpc::ChannelArguments args;
      args.SetMaxReceiveMessageSize(-1);
      args.SetMaxSendMessageSize(-1);
      args.SetInt("kvcomp.load.connection", i);  // distinct args: a channel (TCP) of its own
      if (!f.lb_policy.empty()) args.SetLoadBalancingPolicyName(f.lb_policy);
      stubs_.push_back(pb::KVCompressor::NewStub(
          grpc::CreateCustomChannel(f.server, grpc::InsecureChannelCredentials(), args)));
    }
  }

  // The i-th request: which message (a Compress, or with `frame` a Decompress), its raw bytes
  // (0 for a bad one), the code a bad one must get (null for a good one) and its stub.
  struct Pick {
    const pb::CompressRequest* req;
    uint64_t raw;
    pb::KVCompressor::Stub* stub;
    const char* bad_code = nullptr;
    const pb::DecompressRequest* frame = nullptr;
  };
  Pick Next(int64_t i) {
    bool bad = false, frame = false;
    {
      std::lock_guard<std::mutex> lock(rng_mu_);
      bad = f_.bad_fraction > 0 &&
            std::uniform_real_distribution<double>(0, 1)(rng_) < f_.bad_fraction;
      frame = bad && f_.bad_frames && std::bernoulli_distribution(0.5)(rng_);
    }
    pb::KVCompressor::Stub* stub = stubs_[static_cast<size_t>(i) % stubs_.size()].get();
    if (frame) return {nullptr, 0, stub, "DATA_LOSS", &w_.bad_frame};
    if (bad) return {&w_.bad, 0, stub, "INVALID_ARGUMENT"};
    const size_t k = static_cast<size_t>(i) % w_.good.size();
    return {&w_.good[k], w_.raw[k], stub};
  }
  pb::KVCompressor::Stub* stub0() { return stubs_[0].get(); }
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
  std::vector<std::unique_ptr<pb::KVCompressor::Stub>> stubs_;
};

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

void RunClosed(const LoadFlags& f, Sender& sender, Clock::time_point end, Results* res,
               std::atomic<int64_t>* issued) {
  std::vector<std::thread> threads;
  for (int t = 0; t < f.concurrency; ++t) {
    threads.emplace_back([&] {
      while (Clock::now() < end) {
        const int64_t i = issued->fetch_add(1);
        if (f.requests > 0 && i >= f.requests) break;
        Sender::Pick p = sender.Next(i);
        grpc::ClientContext ctx;
        ctx.set_deadline(sender.Deadline());
        pb::CompressResponse resp;
        pb::DecompressResponse back;
        const auto t0 = Clock::now();
        grpc::Status s = p.frame ? p.stub->Decompress(&ctx, *p.frame, &back)
                                 : p.stub->Compress(&ctx, *p.req, &resp);
        res->Record(Ms(Clock::now() - t0), s.error_code(), p.raw, p.bad_code);
      }
    });
  }
  for (auto& t : threads) t.join();
}

void RunOpen(const LoadFlags& f, Sender& sender, Clock::time_point start, Clock::time_point end,
             Results* res, std::atomic<int64_t>* issued) {
  std::mutex mu;
  std::condition_variable cv;
  int in_flight = 0;
  struct Call {
    grpc::ClientContext ctx;
    pb::CompressResponse resp;
    pb::DecompressResponse back;
  };
  Clock::time_point next = start;
  for (int64_t i = 0; f.requests == 0 || i < f.requests; ++i) {
    next += std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(sender.NextGap()));
    if (next >= end) break;
    std::this_thread::sleep_until(next);
    {
      std::unique_lock<std::mutex> lock(mu);
      // Queue behind the concurrency cap; the wait counts in the latency (from `next`).
      if (!cv.wait_until(lock, end, [&] { return in_flight < f.concurrency; })) break;
      ++in_flight;
    }
    issued->fetch_add(1);
    Sender::Pick p = sender.Next(i);
    auto call = std::make_shared<Call>();
    call->ctx.set_deadline(sender.Deadline());
    const Clock::time_point scheduled = next;
    auto done = [call, scheduled, raw = p.raw, bad_code = p.bad_code, res, &mu, &cv,
                 &in_flight](grpc::Status s) {
      res->Record(Ms(Clock::now() - scheduled), s.error_code(), raw, bad_code);
      std::lock_guard<std::mutex> lock(mu);
      --in_flight;
      cv.notify_all();
    };
    if (p.frame) {
      p.stub->async()->Decompress(&call->ctx, p.frame, &call->back, std::move(done));
    } else {
      p.stub->async()->Compress(&call->ctx, p.req, &call->resp, std::move(done));
    }
  }
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return in_flight == 0; });
}

int RunLoad(const LoadFlags& f) {
  constexpr absl::string_view kCmd = "load";
  std::string description;
  auto cache = LoadWorkload(f.data, &description);
  if (!cache.ok()) return Fail(kCmd, kExitInput, cache.status());
  Workload w;
  for (const io::NamedTensor& t : *cache) {
    pb::CompressRequest req;
    req.set_codec(f.codec);
    client::ToProto(t, req.add_tensors());
    w.raw.push_back(t.tensor.bytes.size());
    w.good.push_back(std::move(req));
  }
  // Deliberately bad: the first tensor under a spec that cannot parse (INVALID_ARGUMENT).
  w.bad = w.good[0];
  w.bad.set_codec("no-such-codec(");

  Sender sender(f, w);
  if (f.bad_frames) {  // a real frame of the first tensor, one payload byte flipped
    grpc::ClientContext ctx;
    ctx.set_deadline(sender.Deadline());
    pb::CompressResponse resp;
    grpc::Status s = sender.stub0()->Compress(&ctx, w.good[0], &resp);
    if (!s.ok() || resp.tensors_size() == 0) {
      return Fail(kCmd, kExitServer,
                  absl::UnavailableError(
                      absl::StrCat("compressing the --bad-frames frame: ", s.error_message())));
    }
    pb::CompressedTensor* t = w.bad_frame.add_tensors();
    *t = resp.tensors(0);
    (*t->mutable_frame())[t->frame().size() / 2] ^= 0x5a;
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
  app->add_flag("--json", f->json, "print the report as JSON");
  return {app, [f] { return RunLoad(*f); }};
}

}  // namespace kvcomp::cli

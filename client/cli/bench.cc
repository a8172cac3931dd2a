// kvcomp bench: the codec in this process (no server) on a file or a generated shape: ratio,
// and compress / decompress GB/s of raw data as the median of --runs runs. With --threads T,
// T threads each work through every tensor and the GB/s is their sum (what a server with T
// workers could reach at best).
#include <algorithm>
#include <chrono>
#include <ctime>
#include <iostream>
#include <thread>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/cli/common.h"
#include "client/cli/workload.h"
#include "core/kvcomp/codec.h"

namespace kvcomp::cli {
namespace {

struct BenchFlags {
  std::string data = "llama:layers=1,heads=8,dim=128,tokens=512";
  std::string codec = "lossless";
  int runs = 5;
  int threads = 1;
  bool json = false;
};

double ProcessCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

struct Timing {
  double wall = 0;  // seconds
  double cpu = 0;   // the process's CPU seconds, all threads
};

// Runs `work(thread)` on `threads` threads. The CPU time is what a machine shared with other
// work does not change: the service benchmark compares it with a server's (bench-service.sh).
template <typename Fn>
Timing Timed(int threads, Fn work) {
  const double cpu0 = ProcessCpuSeconds();
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work, t);
  work(0);
  for (auto& t : pool) t.join();
  return {std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
          ProcessCpuSeconds() - cpu0};
}

int RunBench(const BenchFlags& f) {
  constexpr absl::string_view kCmd = "bench";
  std::string description;
  auto cache = LoadWorkload(f.data, &description);
  if (!cache.ok()) return Fail(kCmd, kExitInput, cache.status());
  auto codec = MakeCodec(f.codec);
  if (!codec.ok()) return Fail(kCmd, kExitUsage, codec.status());
  std::vector<TensorView> views;
  uint64_t raw = 0;
  for (const io::NamedTensor& t : *cache) {
    auto v = TensorView::Make(t.tensor.meta, t.tensor.bytes);
    if (!v.ok()) return Fail(kCmd, kExitInput, v.status());
    views.push_back(*v);
    raw += t.tensor.bytes.size();
  }
  // One checked pass: the frames, the ratio, and a lossless round trip compared bit for bit.
  std::vector<std::vector<uint8_t>> frames;
  uint64_t compressed = 0;
  bool lossless = true;
  for (size_t i = 0; i < views.size(); ++i) {
    auto out = (*codec)->Compress(views[i]);
    if (!out.ok()) return Fail(kCmd, kExitInput, out.status());
    compressed += out->frame.size();
    lossless = lossless && out->report.lossless;
    auto back = Decompress(out->frame);
    if (!back.ok()) return Fail(kCmd, kExitInput, back.status());
    if (out->report.lossless && back->bytes != (*cache)[i].tensor.bytes) {
      return Fail(kCmd, kExitInput,
                  absl::DataLossError(absl::StrCat("lossless round trip of '", (*cache)[i].name,
                                                   "' changed its bytes")));
    }
    frames.push_back(std::move(out->frame));
  }
  std::vector<double> comp_s, decomp_s, comp_cpu_s;
  std::atomic<bool> failed{false};
  int done_runs = 0;
  {
    Progress progress("kvcomp bench", !f.json,
                      [&] { return static_cast<double>(done_runs) / f.runs; });
    for (int r = 0; r < f.runs; ++r) {
      const Timing comp = Timed(f.threads, [&](int) {
        for (const TensorView& v : views) {
          if (!(*codec)->Compress(v).ok()) failed = true;
        }
      });
      comp_s.push_back(comp.wall);
      comp_cpu_s.push_back(comp.cpu);
      decomp_s.push_back(Timed(f.threads, [&](int) {
                           for (const auto& frame : frames) {
                             if (!Decompress(frame).ok()) failed = true;
                           }
                         }).wall);
      ++done_runs;
    }
  }
  if (failed) return Fail(kCmd, kExitInput, absl::InternalError("a timed run failed"));
  std::sort(comp_s.begin(), comp_s.end());
  std::sort(decomp_s.begin(), decomp_s.end());
  std::sort(comp_cpu_s.begin(), comp_cpu_s.end());
  const double bytes = static_cast<double>(raw) * f.threads;
  const double comp_gbps = bytes / Percentile(comp_s, 0.5) / 1e9;
  const double decomp_gbps = bytes / Percentile(decomp_s, 0.5) / 1e9;
  const double ratio = compressed ? static_cast<double>(raw) / compressed : 0;
  if (f.json) {
    nlohmann::ordered_json j;
    j["codec"] = f.codec;
    j["data"] = description;
    j["tensors"] = views.size();
    j["raw_bytes"] = raw;
    j["compressed_bytes"] = compressed;
    j["ratio"] = ratio;
    j["lossless"] = lossless;
    j["runs"] = f.runs;
    j["threads"] = f.threads;
    j["compress_gb_per_second"] = comp_gbps;
    j["decompress_gb_per_second"] = decomp_gbps;
    j["compress_cpu_seconds_per_gb"] = Percentile(comp_cpu_s, 0.5) / (bytes / 1e9);
    j["compress_seconds"] = comp_s;
    j["decompress_seconds"] = decomp_s;
    std::cout << j.dump(2) << "\n";
  } else {
    std::cout << absl::StrFormat(
        "kvcomp bench: %s, in process, %d thread(s), median of %d runs\n  data: %s\n"
        "  raw %d B, compressed %d B, ratio %.3fx (%s)\n"
        "  compress   %.3f GB/s\n  decompress %.3f GB/s\n",
        f.codec, f.threads, f.runs, description, raw, compressed, ratio,
        lossless ? "lossless, round trip checked" : "lossy", comp_gbps, decomp_gbps);
  }
  return kExitOk;
}

}  // namespace

Command AddBenchCommand(CLI::App& root) {
  auto f = std::make_shared<BenchFlags>();
  CLI::App* app = root.add_subcommand(
      "bench",
      "Benchmark a codec in this process (no server) on your data or a generated shape: "
      "ratio, compress and decompress GB/s (median of --runs)");
  app->add_option("data", f->data,
                  "dump folder, .npy/.npz/.safetensors file, or a generated shape "
                  "'llama:layers=1,heads=8,dim=128,tokens=512[,dtype=fp16]'")
      ->capture_default_str();
  app->add_option("--codec", f->codec, "codec spec")->capture_default_str();
  app->add_option("--runs", f->runs, "timed runs (the median is reported)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  app->add_option("--threads", f->threads, "threads, each working through every tensor")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  app->add_flag("--json", f->json, "print the result as JSON");
  return {app, [f] { return RunBench(*f); }};
}

}  // namespace kvcomp::cli

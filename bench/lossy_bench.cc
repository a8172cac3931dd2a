// kvbench_lossy: the lossy half of `make bench`. For each codec: ratio K / V / KV (whole frames,
// every scale, table and header counted), the error it caused measured on the decoded tensors
// (worst-tensor cosine, largest MAE and relative MAE, for K and V apart), whether it meets the
// seed's strict thresholds on every tensor, and single-core compress / decompress GB/s.
//
// Rows: zstd -3 (exact; the speed anchor), the seed's methods as it ran them (per-tensor
// quantisation, clip + quant, block-norm with top-k outliers, its "mixed" policy), KIVI-style
// grouping, and kvcomp's bounded presets at cosine 0.9999, 0.999 and 0.99. Compress time includes
// what the codec does to keep its promise (bounded's search and verification decode); that is the
// price a user pays.
//
//   kvbench_lossy [--kv DIR] [--rounds N] [--layers 0,1,15,31|all|none] [--codecs 'a;b']
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "bench/bench_data.h"
#include "core/kvcomp/codec.h"
#include "core/kvcomp/error_metrics.h"

namespace {

using kvcomp::bench::Dataset;

// The seed's strict thresholds, on every tensor (kv-compression-work-summary.md).
constexpr double kSeedCos = 0.9999;
constexpr double kSeedMaeK = 0.01;
constexpr double kSeedMaeV = 0.002;

const std::vector<std::string> kDefaultCodecs = {
    "zstd(3)",  // the peer every speed is read against, measured in the same run
    "quant(bits=8,group=tensor)+zstd(3)",
    "quant(bits=10,group=tensor)+zstd(3)",
    "quant(bits=8,group=tensor,clip=0.99)+zstd(3)",
    "quant(bits=10,group=tensor,clip=0.99)+zstd(3)",
    "blocknorm(block=128,topk=0.02,bits=10)+zstd(3)",
    "mixed(2,lossless,quant(bits=10,group=tensor)+zstd(3))",
    "kv(k=quant(bits=8,group=channel)+zstd(3),v=quant(bits=8,group=token)+zstd(3))",
    "kv(k=bounded(cos=0.9999,mae=0.01),v=bounded(cos=0.9999,mae=0.002))",
    "bounded(cos=0.9999,rel_mae=0.01)",
    // The same with the coder bounded used before qhuff (byte planes, zstd -1): qhuff's share.
    "bounded(cos=0.9999,rel_mae=0.01,coder=planes+zstd(1))",
    "bounded(cos=0.999)",
    "bounded(cos=0.99)",
};

// Worst values over the tensors of one kind (K or V).
struct Worst {
  uint64_t raw = 0, compressed = 0;
  double cosine = 1, mae = 0, rel_mae = 0;
  void Add(uint64_t raw_bytes, uint64_t frame_bytes, const kvcomp::ErrorStats& e) {
    raw += raw_bytes;
    compressed += frame_bytes;
    cosine = std::min(cosine, e.cosine);
    mae = std::max(mae, e.mae);
    rel_mae = std::max(rel_mae, e.rel_mae);
  }
  double ratio() const { return compressed ? static_cast<double>(raw) / compressed : 0; }
};

void Fail(const std::string& what, const absl::Status& s) {
  std::fprintf(stderr, "kvbench_lossy: %s: %s\n", what.c_str(), s.ToString().c_str());
  std::exit(1);
}

void Run(const Dataset& ds, const std::vector<std::string>& specs, int rounds) {
  const uint64_t raw_total = ds.raw_bytes();
  std::printf("\n### %s: %zu tensors, %.1f MiB\n\n", ds.name.c_str(), ds.items.size(),
              raw_total / 1048576.0);
  std::printf(
      "| codec | K | V | KV | worst cos K | worst cos V | max MAE K | max MAE V | max rel MAE | "
      "seed thresholds | compress GB/s | decompress GB/s |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  struct Row {
    std::unique_ptr<kvcomp::Codec> codec;
    std::vector<double> ct, dt;
    Worst worst[2];
  };
  std::vector<Row> rows(specs.size());
  for (size_t j = 0; j < specs.size(); ++j) {
    auto codec = kvcomp::MakeCodec(specs[j]);
    if (!codec.ok()) Fail(specs[j], codec.status());
    rows[j].codec = std::move(*codec);
  }
  std::vector<std::vector<uint8_t>> frames(ds.items.size());
  kvcomp::bench::InterleavedRounds(rounds, specs.size(), [&](size_t j, int r) {
    const std::string& spec = specs[j];
    Row& row = rows[j];
    const double t0 = kvcomp::bench::ThreadSeconds();
    for (size_t i = 0; i < ds.items.size(); ++i) {
      auto out = row.codec->Compress(ds.items[i].t.view());
      if (!out.ok()) Fail(spec + " on " + ds.items[i].name, out.status());
      frames[i] = std::move(out->frame);
    }
    row.ct.push_back(kvcomp::bench::ThreadSeconds() - t0);
    double d = 0;
    kvcomp::Tensor decoded;  // reused, as kvbench's peers reuse their buffers
    for (size_t i = 0; i < ds.items.size(); ++i) {
      const double a = kvcomp::bench::ThreadSeconds();
      const absl::Status back = kvcomp::bench::DecompressReusing(frames[i], &decoded);
      d += kvcomp::bench::ThreadSeconds() - a;
      if (!back.ok()) Fail(spec + " decode of " + ds.items[i].name, back);
      if (r == 0) {  // the error, measured here on the decoded tensor, not taken on trust
        const kvcomp::Tensor& t = ds.items[i].t;
        const int v = t.meta.kind == kvcomp::Kind::kValue;
        row.worst[v].Add(t.bytes.size(), frames[i].size(),
                         kvcomp::MeasureError(t.view(), decoded.view()));
      }
    }
    row.dt.push_back(d);
    return row.ct.back() + d;
  });
  for (size_t j = 0; j < specs.size(); ++j) {
    const Row& row = rows[j];
    const Worst* worst = row.worst;
    const bool seed_ok = worst[0].cosine >= kSeedCos && worst[1].cosine >= kSeedCos &&
                         worst[0].mae <= kSeedMaeK && worst[1].mae <= kSeedMaeV;
    const uint64_t comp = worst[0].compressed + worst[1].compressed;
    std::printf(
        "| %s | %.3f | %.3f | %.3f | %.6f | %.6f | %.5f | %.5f | %.4f | %s | %.3f | %.3f |\n",
        specs[j].c_str(), worst[0].ratio(), worst[1].ratio(),
        comp ? static_cast<double>(raw_total) / comp : 0.0, worst[0].cosine, worst[1].cosine,
        worst[0].mae, worst[1].mae, std::max(worst[0].rel_mae, worst[1].rel_mae),
        seed_ok ? "pass" : "fail", raw_total / kvcomp::bench::Median(row.ct) / 1e9,
        raw_total / kvcomp::bench::Median(row.dt) / 1e9);
  }
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  kvcomp::bench::BenchOptions o;  // --no-peers is accepted: this table has no peer rows
  o.kv_dir = KVCOMP_SHARED_KV;
  o.specs = kDefaultCodecs;
  if (!kvcomp::bench::ParseBenchArgs(argc, argv, "kvbench_lossy", &o)) return 2;
  kvcomp::bench::KeepFreedMemory();
  std::printf(
      "kvbench_lossy: one thread, CPU time, median of %d rounds (1 when a round takes > 3 s), "
      "rounds interleaved across rows; "
      "ratios count every frame byte; errors measured on the decoded tensors; seed "
      "thresholds: cos >= %g on K and V, MAE K <= %g, MAE V <= %g, on every tensor\n",
      o.rounds, kSeedCos, kSeedMaeK, kSeedMaeV);
  const Dataset real = kvcomp::bench::LoadSharedKv(o.kv_dir, kvcomp::DType::kFP16);
  if (!real.items.empty()) Run(real, o.specs, o.rounds);
  if (!o.layers.empty()) {
    // FP16, the dtype for the targets, and BF16, Llama 3's own.
    Run(kvcomp::bench::Synth(kvcomp::DType::kFP16, o.layers), o.specs, o.rounds);
    Run(kvcomp::bench::Synth(kvcomp::DType::kBF16, o.layers), o.specs, o.rounds);
  }
  return 0;
}

// kvbench: the `make bench` table. Ratio K / V / KV and single-core compress / decompress
// throughput (GB/s of raw tensor bytes, median of several rounds) for kvcomp's codecs and,
// in the same run, the peers: zstd -1/-3/-19, lz4, blosc byte-shuffle + zstd, memcpy.
//
// Datasets: the real caches in ../shared/kv (FP16), and generated Llama-3-8B-shaped caches
// (32 layers x 8 KV heads x 4096 tokens x head_dim 128; FP16 and BF16; see
// core/kvcomp/synth/llama_synth.h). kvcomp sizes are whole frames: header, tables, checksum.
//
//   kvbench [--kv DIR] [--rounds N] [--layers 0,1,15,31|all|none] [--codecs 'a;b'] [--no-peers]
#include <blosc.h>
#include <lz4.h>
#include <zstd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bench/bench_data.h"
#include "core/kvcomp/codec.h"

namespace {

using kvcomp::bench::Dataset;

// A codec under test: compress into `out` (returns compressed size) and decompress `in` into
// `raw` (which has the original size); both must be exact, checked once per dataset.
struct Method {
  std::string name;
  std::function<std::vector<uint8_t>(const kvcomp::Tensor&)> compress;
  std::function<void(const std::vector<uint8_t>&, const kvcomp::Tensor&, std::vector<uint8_t>*)>
      decompress;
};

Method KvcompMethod(const std::string& spec) {
  auto codec = kvcomp::MakeCodec(spec);
  if (!codec.ok()) {
    std::fprintf(stderr, "kvbench: %s: %s\n", spec.c_str(), codec.status().ToString().c_str());
    std::exit(2);
  }
  std::shared_ptr<kvcomp::Codec> c(std::move(*codec));
  return {spec,
          [c](const kvcomp::Tensor& t) {
            auto out = c->Compress(t.view());
            if (!out.ok()) {
              std::fprintf(stderr, "kvbench: compress: %s\n", out.status().ToString().c_str());
              std::exit(1);
            }
            return std::move(out->frame);
          },
          [](const std::vector<uint8_t>& in, const kvcomp::Tensor&, std::vector<uint8_t>* raw) {
            // Into the caller's buffer, as the peers decode.
            auto back = kvcomp::DecompressInto(in, [raw](const kvcomp::TensorMeta& m) {
              raw->resize(m.NumBytes());
              return absl::MakeSpan(*raw);
            });
            if (!back.ok()) {
              std::fprintf(stderr, "kvbench: decompress: %s\n", back.status().ToString().c_str());
              std::exit(1);
            }
          }};
}

Method ZstdMethod(int level) {
  auto cctx = std::shared_ptr<ZSTD_CCtx>(ZSTD_createCCtx(), ZSTD_freeCCtx);
  auto dctx = std::shared_ptr<ZSTD_DCtx>(ZSTD_createDCtx(), ZSTD_freeDCtx);
  return {
      "zstd -" + std::to_string(level),
      [cctx, level](const kvcomp::Tensor& t) {
        std::vector<uint8_t> out(ZSTD_compressBound(t.bytes.size()));
        out.resize(ZSTD_compressCCtx(cctx.get(), out.data(), out.size(), t.bytes.data(),
                                     t.bytes.size(), level));
        return out;
      },
      [dctx](const std::vector<uint8_t>& in, const kvcomp::Tensor& t, std::vector<uint8_t>* raw) {
        raw->resize(t.bytes.size());
        ZSTD_decompressDCtx(dctx.get(), raw->data(), raw->size(), in.data(), in.size());
      }};
}

Method Lz4Method() {
  return {"lz4",
          [](const kvcomp::Tensor& t) {
            std::vector<uint8_t> out(LZ4_compressBound(static_cast<int>(t.bytes.size())));
            out.resize(LZ4_compress_default(
                reinterpret_cast<const char*>(t.bytes.data()), reinterpret_cast<char*>(out.data()),
                static_cast<int>(t.bytes.size()), static_cast<int>(out.size())));
            return out;
          },
          [](const std::vector<uint8_t>& in, const kvcomp::Tensor& t, std::vector<uint8_t>* raw) {
            raw->resize(t.bytes.size());
            LZ4_decompress_safe(reinterpret_cast<const char*>(in.data()),
                                reinterpret_cast<char*>(raw->data()), static_cast<int>(in.size()),
                                static_cast<int>(raw->size()));
          }};
}

Method BloscMethod(int clevel) {
  return {"blosc shuffle+zstd " + std::to_string(clevel),
          [clevel](const kvcomp::Tensor& t) {
            std::vector<uint8_t> out(t.bytes.size() + BLOSC_MAX_OVERHEAD);
            const int n = blosc_compress_ctx(clevel, BLOSC_SHUFFLE, kvcomp::DTypeSize(t.meta.dtype),
                                             t.bytes.size(), t.bytes.data(), out.data(), out.size(),
                                             "zstd", 0, 1);
            out.resize(n > 0 ? n : 0);
            return out;
          },
          [](const std::vector<uint8_t>& in, const kvcomp::Tensor& t, std::vector<uint8_t>* raw) {
            raw->resize(t.bytes.size());
            blosc_decompress_ctx(in.data(), raw->data(), raw->size(), 1);
          }};
}

Method MemcpyMethod() {
  return {"memcpy", [](const kvcomp::Tensor& t) { return t.bytes; },
          [](const std::vector<uint8_t>& in, const kvcomp::Tensor&, std::vector<uint8_t>* raw) {
            raw->resize(in.size());
            std::memcpy(raw->data(), in.data(), in.size());
          }};
}

void Run(const Dataset& ds, const std::vector<Method>& methods, int rounds) {
  const uint64_t raw_total = ds.raw_bytes();
  std::printf("\n### %s: %zu tensors, %.1f MiB\n\n", ds.name.c_str(), ds.items.size(),
              raw_total / 1048576.0);
  std::printf("| codec | K | V | KV | compress GB/s | decompress GB/s |\n");
  std::printf("|---|---|---|---|---|---|\n");
  struct Row {
    uint64_t raw[2] = {0, 0}, comp[2] = {0, 0};
    std::vector<double> ct, dt;
  };
  std::vector<Row> rows(methods.size());
  std::vector<std::vector<uint8_t>> frames(ds.items.size());
  std::vector<uint8_t> back;
  kvcomp::bench::InterleavedRounds(rounds, methods.size(), [&](size_t j, int r) {
    const Method& m = methods[j];
    Row& row = rows[j];
    const double t0 = kvcomp::bench::ThreadSeconds();
    for (size_t i = 0; i < ds.items.size(); ++i) frames[i] = m.compress(ds.items[i].t);
    row.ct.push_back(kvcomp::bench::ThreadSeconds() - t0);
    double d = 0;
    for (size_t i = 0; i < ds.items.size(); ++i) {
      const double a = kvcomp::bench::ThreadSeconds();
      m.decompress(frames[i], ds.items[i].t, &back);
      d += kvcomp::bench::ThreadSeconds() - a;
      if (r == 0 && back != ds.items[i].t.bytes) {
        std::fprintf(stderr, "kvbench: %s is not bit-exact on %s\n", m.name.c_str(),
                     ds.items[i].name.c_str());
        std::exit(1);
      }
    }
    row.dt.push_back(d);
    if (r == 0) {
      for (size_t i = 0; i < ds.items.size(); ++i) {
        const int v = ds.items[i].t.meta.kind == kvcomp::Kind::kValue;
        row.raw[v] += ds.items[i].t.bytes.size();
        row.comp[v] += frames[i].size();
      }
    }
    return row.ct.back() + d;
  });
  auto ratio = [](uint64_t a, uint64_t b) { return b ? static_cast<double>(a) / b : 0.0; };
  for (size_t j = 0; j < methods.size(); ++j) {
    const Row& row = rows[j];
    std::printf("| %s | %.3f | %.3f | %.3f | %.3f | %.3f |\n", methods[j].name.c_str(),
                ratio(row.raw[0], row.comp[0]), ratio(row.raw[1], row.comp[1]),
                ratio(row.raw[0] + row.raw[1], row.comp[0] + row.comp[1]),
                raw_total / kvcomp::bench::Median(row.ct) / 1e9,
                raw_total / kvcomp::bench::Median(row.dt) / 1e9);
  }
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  kvcomp::bench::BenchOptions o;
  o.kv_dir = KVCOMP_SHARED_KV;
  o.rounds = 5;
  o.specs = {"lossless", "lossless-max", "dedupe+huff", "huff", "gear+rans", "gear+zstd(19)"};
  if (!kvcomp::bench::ParseBenchArgs(argc, argv, "kvbench", &o)) return 2;
  kvcomp::bench::KeepFreedMemory();
  blosc_init();
  std::vector<Method> methods;
  for (const auto& s : o.specs) methods.push_back(KvcompMethod(s));
  if (o.peers) {
    for (int l : {1, 3, 19}) methods.push_back(ZstdMethod(l));
    methods.push_back(Lz4Method());
    methods.push_back(BloscMethod(9));
    methods.push_back(MemcpyMethod());
  }
  std::printf(
      "kvbench: one thread, CPU time, median of %d rounds (1 when a round takes > 3 s), "
      "rounds interleaved across rows; ratios count every frame byte\n",
      o.rounds);
  for (kvcomp::DType dt : {kvcomp::DType::kFP16, kvcomp::DType::kBF16}) {
    Dataset real = kvcomp::bench::LoadSharedKv(o.kv_dir, dt);
    if (!real.items.empty()) Run(real, methods, o.rounds);
  }
  if (!o.layers.empty()) {
    Run(kvcomp::bench::Synth(kvcomp::DType::kFP16, o.layers), methods, o.rounds);
    Run(kvcomp::bench::Synth(kvcomp::DType::kBF16, o.layers), methods, o.rounds);
  }
  blosc_destroy();
  return 0;
}

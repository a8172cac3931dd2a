// make_server_seeds KV_DIR OUT_DIR: seeds for fuzz_server (OUT_DIR/server/): real Compress,
// Decompress and Analyze requests built from slices of the real KV dumps, with every example
// spec (tests/tools/examples.cc), every named sweep, every Analyze option (RoPE with both pair
// layouts, each threshold, a budget, token and layer sampling) on tensors of rank 1 to 4, and
// streams of several chunks. (A seed with no RoPE option left fuzz_server blind to the RoPE
// check's overflow on rank-1 tensors: issue 25, finding 1.)
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_format.h"
#include "core/kvcomp/analysis/analyzer.h"
#include "proto/kvcomp/v1/convert.h"
#include "server/kvcomp_ops.h"
#include "tests/fuzz/server_target.h"
#include "tests/fuzz/service_target.h"
#include "tests/tools/examples.h"

namespace kvcomp {
namespace {

namespace fs = std::filesystem;

int Main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s KV_DIR OUT_DIR\n", argv[0]);
    return 2;
  }
  std::vector<Tensor> tensors;
  for (Kind kind : {Kind::kKey, Kind::kValue}) {
    auto t = tools::LoadKvSlice(argv[1], "story_prose", 1, kind, DType::kFP16, 8);
    if (!t.ok()) {
      std::fprintf(stderr, "make_server_seeds: %s\n", t.status().ToString().c_str());
      return 1;
    }
    tensors.push_back(std::move(*t));
  }
  const fs::path dir = fs::path(argv[2]) / "server";
  fs::create_directories(dir);
  int n = 0;
  auto write = [&](fuzz::Rpc rpc, const google::protobuf::Message& request) {
    const auto bytes = fuzz::ServerInput(rpc, request.SerializeAsString());
    std::ofstream(dir / absl::StrFormat("seed-%04d", n++), std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
  };
  auto add_tensors = [&](auto* repeated) {
    for (const Tensor& t : tensors) {
      proto::TensorToProto(t, absl::StrCat("layer1_", KindName(t.meta.kind)), repeated->Add());
    }
  };
  for (const auto& ex : tools::ExampleSpecs(tensors, nullptr)) {
    v1::CompressRequest compress;
    compress.set_codec(ex.spec);
    add_tensors(compress.mutable_tensors());
    write(fuzz::Rpc::kCompress, compress);

    v1::DecompressRequest decompress;
    auto codec = MakeCodec(ex.spec);
    for (const Tensor& t : tensors) {
      auto out = (*codec)->Compress(t.view());
      if (!out.ok()) continue;  // examples need only work on some dtypes
      auto* ct = decompress.add_tensors();
      ct->set_name("t");
      ct->set_frame(std::string(out->frame.begin(), out->frame.end()));
    }
    write(fuzz::Rpc::kDecompress, decompress);

    v1::AnalyzeRequest analyze;
    analyze.add_codecs(ex.spec);
    add_tensors(analyze.mutable_tensors());
    write(fuzz::Rpc::kAnalyze, analyze);
  }
  for (const std::string& sweep : SweepNames()) {
    v1::AnalyzeRequest analyze;
    analyze.add_sweeps(sweep);
    add_tensors(analyze.mutable_tensors());
    analyze.mutable_k_thresholds()->mutable_cosine()->set_value(0.999);
    write(fuzz::Rpc::kAnalyze, analyze);
  }
  // Every Analyze option, over the real tensors reshaped to ranks 1 to 4.
  for (int rank = 1; rank <= 4; ++rank) {
    for (const char* pairs : {"interleaved", "half"}) {
      v1::AnalyzeRequest analyze;
      analyze.add_codecs("zstd(3)");
      analyze.add_codecs("bounded(cos=0.999)");
      add_tensors(analyze.mutable_tensors());
      for (v1::Tensor& t : *analyze.mutable_tensors()) {
        const int64_t n = t.shape(0) * t.shape(1) * t.shape(2);
        t.clear_shape();
        if (rank == 1) t.add_shape(n);
        if (rank == 2) t.add_shape(n / 8), t.add_shape(8);
        if (rank == 3) t.add_shape(4), t.add_shape(n / 32), t.add_shape(8);
        if (rank == 4) t.add_shape(2), t.add_shape(2), t.add_shape(n / 32), t.add_shape(8);
      }
      analyze.mutable_rope_theta()->set_value(10000);
      analyze.set_rope_pairs(pairs);
      for (v1::ErrorThresholds* th :
           {analyze.mutable_k_thresholds(), analyze.mutable_v_thresholds()}) {
        th->mutable_cosine()->set_value(0.999);
        th->mutable_mae()->set_value(0.01);
        th->mutable_rel_mae()->set_value(0.01);
        th->mutable_max_abs()->set_value(0.5);
        th->mutable_rel_rmse()->set_value(0.02);
        th->mutable_snr_db()->set_value(30);
      }
      analyze.mutable_budget_bytes()->set_value(4096);
      analyze.set_max_tokens(4);
      analyze.set_max_layers(1);
      write(fuzz::Rpc::kAnalyze, analyze);
    }
  }
  // Streams: token blocks of the tensors, two chunks, compressed then decompressed.
  for (const char* spec : {"zstd(3)", "lossless", "bounded(cos=0.9999)"}) {
    std::vector<std::string> compress_chunks, decompress_chunks;
    for (int64_t first : {0, 4}) {
      v1::CompressRequest chunk;
      chunk.set_codec(spec);
      add_tensors(chunk.mutable_tensors());
      for (v1::Tensor& t : *chunk.mutable_tensors()) {
        // Tokens [first, first + 4) of [heads, 8, dim]: the block's own tensor.
        const int64_t heads = t.shape(0), dim = t.shape(2), tokens = t.shape(1);
        std::string block;
        for (int64_t h = 0; h < heads; ++h) {
          block.append(t.raw_contents(), static_cast<size_t>((h * tokens + first) * dim * 2),
                       static_cast<size_t>(4 * dim * 2));
        }
        t.set_raw_contents(block);
        t.set_shape(1, 4);
        t.set_token_offset(first);
        t.set_total_tokens(tokens);
      }
      compress_chunks.push_back(chunk.SerializeAsString());
      v1::CompressResponse answer;
      if (server::RunCompress(chunk, &answer, {}).ok()) {
        v1::DecompressRequest back;
        *back.mutable_tensors() = answer.tensors();
        decompress_chunks.push_back(back.SerializeAsString());
      }
    }
    for (const auto& [rpc, chunks] :
         {std::make_pair(fuzz::Rpc::kCompressStream, compress_chunks),
          std::make_pair(fuzz::Rpc::kDecompressStream, decompress_chunks)}) {
      const auto bytes = fuzz::StreamInput(rpc, chunks);
      std::ofstream(dir / absl::StrFormat("seed-%04d", n++), std::ios::binary)
          .write(reinterpret_cast<const char*>(bytes.data()),
                 static_cast<std::streamsize>(bytes.size()));
    }
  }
  // Shared memory (server_target.h): tensors named by region, offset and size in region "a",
  // which holds the input's own bytes; output windows in "b"; and each bound broken once.
  for (const std::vector<uint8_t>& seed : fuzz::ShmSeeds()) {
    std::ofstream(dir / absl::StrFormat("seed-%04d", n++), std::ios::binary)
        .write(reinterpret_cast<const char*>(seed.data()),
               static_cast<std::streamsize>(seed.size()));
  }
  // A llama.cpp Q8_0 cache's tensor, with every spec that takes quantised blocks.
  auto q8 = tools::LoadKvSlice(argv[1], "story_prose", 1, Kind::kKey, DType::kQ8_0, 8);
  if (!q8.ok()) {
    std::fprintf(stderr, "make_server_seeds: %s\n", q8.status().ToString().c_str());
    return 1;
  }
  for (const auto& ex : tools::ExampleSpecs({*q8}, nullptr)) {
    v1::CompressRequest compress;
    compress.set_codec(ex.spec);
    proto::TensorToProto(*q8, "layer1_k", compress.add_tensors());
    write(fuzz::Rpc::kCompress, compress);
    auto out = (*MakeCodec(ex.spec))->Compress(q8->view());
    v1::DecompressRequest decompress;
    auto* ct = decompress.add_tensors();
    ct->set_name("layer1_k");
    ct->set_frame(std::string(out->frame.begin(), out->frame.end()));
    write(fuzz::Rpc::kDecompress, decompress);
  }
  const fs::path service_dir = fs::path(argv[2]) / "service";
  fs::create_directories(service_dir);
  int programs = 0;
  for (const std::vector<uint8_t>& seed : fuzz::ServiceSeeds()) {
    std::ofstream(service_dir / absl::StrFormat("seed-%04d", programs++), std::ios::binary)
        .write(reinterpret_cast<const char*>(seed.data()),
               static_cast<std::streamsize>(seed.size()));
  }
  std::printf("make_server_seeds: %d seeds for server, %d for service\n", n, programs);
  return 0;
}

}  // namespace
}  // namespace kvcomp

int main(int argc, char** argv) { return kvcomp::Main(argc, argv); }

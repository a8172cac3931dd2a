// make_server_seeds KV_DIR OUT_DIR: seeds for fuzz_server (OUT_DIR/server/): real Compress,
// Decompress and Analyze requests built from slices of the real KV dumps, with every example
// spec (tests/tools/examples.cc) and every named sweep.
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_format.h"
#include "examples.h"
#include "kvcomp/analysis/analyzer.h"
#include "server/tensor_convert.h"
#include "server_target.h"

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
      server::TensorToProto(t, absl::StrCat("layer1_", KindName(t.meta.kind)), repeated->Add());
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
  std::printf("make_server_seeds: %d seeds\n", n);
  return 0;
}

}  // namespace
}  // namespace kvcomp

int main(int argc, char** argv) { return kvcomp::Main(argc, argv); }

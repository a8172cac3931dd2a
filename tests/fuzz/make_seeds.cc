// make_seeds KV_DIR OUT_DIR: writes the fuzzers' seed corpora (OUT_DIR/<target>/) and a
// dictionary of spec words (OUT_DIR/spec.dict), made from real frames of every registered
// stage and preset applied to slices of the real KV dumps. Warns about a stage or preset
// with no working example: the targets still reach it (they pick stages by ID and specs by
// mutation), only more slowly, so add an argument pattern in tests/tools/examples.cc.
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/kvcomp/codec.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/fuzz/targets.h"
#include "tests/tools/examples.h"

namespace kvcomp {
namespace {

namespace fs = std::filesystem;

class SeedWriter {
 public:
  explicit SeedWriter(fs::path dir) : dir_(std::move(dir)) {
    for (const auto& t : fuzz::kTargets) fs::create_directories(dir_ / t.name);
  }
  void Write(absl::string_view target, absl::Span<const uint8_t> bytes) {
    const auto path =
        dir_ / std::string(target) / absl::StrFormat("seed-%04d", count_[std::string(target)]++);
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
  }
  void Write(absl::string_view target, const std::string& s) {
    Write(target, absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
  }
  int total() const {
    int n = 0;
    for (const auto& [_, c] : count_) n += c;
    return n;
  }

 private:
  fs::path dir_;
  std::map<std::string, int, std::less<>> count_;
};

// The spec's words, for libFuzzer's -dict: stage, parameter, choice and preset names.
void CollectWords(const std::string& spec, std::set<std::string>* words) {
  std::string word;
  for (char c : spec + " ") {
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      word.push_back(c);
    } else {
      if (word.size() > 1) words->insert(word);
      word.clear();
    }
  }
}

void WriteSeeds(const tools::Example& ex, const Tensor& t, SeedWriter& seeds) {
  auto codec = MakeCodec(ex.spec);
  auto out = (*codec)->Compress(t.view());
  if (!out.ok()) return;
  const auto& frame = out->frame;
  seeds.Write("frame", frame);
  std::vector<uint8_t> two = frame;
  two.insert(two.end(), frame.begin(), frame.end());
  seeds.Write("frame", two);

  auto parsed = ParseFrame(frame);
  auto descs = fuzz::PlanFinalStreams(parsed->header.meta, parsed->header.stages);
  if (descs.ok() && parsed->header.stages.size() <= 3) {
    fuzz::InputWriter w;
    fuzz::WriteStages(parsed->header.stages, w);
    fuzz::WriteMeta(t.meta, w);
    fuzz::WriteStreams(*descs, parsed->streams, w);
    seeds.Write("stage_decode", w.bytes());

    fuzz::InputWriter r;  // round trip through the recorded pipeline's stages
    r.U8(2);              // finite values only
    fuzz::WriteStages(parsed->header.stages, r);
    fuzz::WriteMeta(t.meta, r);
    r.Bytes(t.bytes);
    seeds.Write("roundtrip", r.bytes());
  }
  fuzz::InputWriter r;  // round trip through the spec string
  r.U8(1 | 2);
  r.CString(ex.spec);
  fuzz::WriteMeta(t.meta, r);
  r.Bytes(t.bytes);
  seeds.Write("roundtrip", r.bytes());
}

int Main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s KV_DIR OUT_DIR\n", argv[0]);
    return 2;
  }
  const std::string kv = argv[1];
  struct Slice {
    const char* run;
    int layer;
    Kind kind;
    DType dtype;
    int64_t tokens;
  };
  const Slice slices[] = {{"story_prose", 0, Kind::kKey, DType::kFP16, 16},
                          {"story_prose", 0, Kind::kValue, DType::kFP16, 16},
                          {"technical_prose", 1, Kind::kValue, DType::kFP32, 8},
                          {"generated_greedy", 3, Kind::kKey, DType::kBF16, 8},
                          {"story_prose", 1, Kind::kKey, DType::kQ8_0, 16},
                          {"technical_prose", 0, Kind::kValue, DType::kQ4_0, 8}};
  std::vector<Tensor> tensors;
  for (const Slice& s : slices) {
    auto t = tools::LoadKvSlice(kv, s.run, s.layer, s.kind, s.dtype, s.tokens);
    if (!t.ok()) {
      std::fprintf(stderr, "make_seeds: %s\n", t.status().ToString().c_str());
      return 1;
    }
    tensors.push_back(std::move(*t));
  }
  std::vector<std::string> uncovered;
  const auto examples = tools::ExampleSpecs(tensors, &uncovered);
  SeedWriter seeds(argv[2]);
  std::set<std::string> words;
  for (const auto& ex : examples) {
    seeds.Write("spec", ex.spec);
    CollectWords(ex.spec, &words);
    for (const Tensor& t : tensors) WriteSeeds(ex, t, seeds);
  }
  std::ofstream dict(fs::path(argv[2]) / "spec.dict");
  for (const auto& w : words) dict << '"' << w << "\"\n";
  for (const char* punct : {"(", ")", "+", ",", "="}) dict << '"' << punct << "\"\n";
  std::printf("make_seeds: %zu example specs, %d seeds, %zu dictionary words\n", examples.size(),
              seeds.total(), words.size());
  for (const auto& u : uncovered) {
    std::fprintf(stderr, "make_seeds: warning: no seed for %s (see tests/tools/examples.cc)\n",
                 u.c_str());
  }
  return 0;
}

}  // namespace
}  // namespace kvcomp

int main(int argc, char** argv) { return kvcomp::Main(argc, argv); }

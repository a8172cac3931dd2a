// kvcomp-core-roundtrip: frames made by one build of the core, decoded by another (x86-64 and
// ARM64 under emulation; scripts/test-arm64.sh runs both directions).
//
//   kvcomp-core-roundtrip encode [--kv DIR] OUT_DIR
//       Compresses real KV slices (every dtype, both layouts, odd lengths) with an example of
//       every registered stage and preset (tests/tools/examples.h), and random bit patterns
//       (NaN payloads, subnormals, infinities) with every lossless one. Writes the frames and
//       roundtrip.tsv: per frame, the tensor, the spec, and the SHA-256 of the source, of the
//       bytes this build decodes the frame to, and of the frame itself.
//   kvcomp-core-roundtrip decode [--kv DIR] IN_DIR
//       Decodes every frame and checks the header and the decoded bytes against what the
//       encoding build recorded (lossless frames: the source, bit for bit), and re-encodes
//       each source with the same spec, which must work here too; frames this build writes
//       byte-identically are counted (frames need only decode the same, so not required).
//
// Exit status 0 only when every frame passes; the last line is "roundtrip: N passed, N failed".
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "core/kvcomp/codec.h"
#include "core/kvcomp/frame.h"
#include "core/kvcomp/registry.h"
#include "tests/core/golden_manifest.h"
#include "tests/core/sha256.h"
#include "tests/core/test_data.h"
#include "tests/tools/examples.h"

namespace kvcomp {
namespace {

namespace fs = std::filesystem;

constexpr char kManifest[] = "roundtrip.tsv";

struct NamedInput {
  std::string name;
  Tensor tensor;
  bool random_bits = false;  // lossless specs only: lossy stages refuse non-finite input
};

// [heads, tokens, dim] -> [tokens, heads, dim], same bytes per element.
Tensor ToTokenMajor(const Tensor& t) {
  Tensor out = t;
  out.meta.layout = Layout::kTokenMajor;
  const int64_t heads = t.meta.shape[0], tokens = t.meta.shape[1], dim = t.meta.shape[2];
  out.meta.shape = {tokens, heads, dim};
  const size_t row = static_cast<size_t>(dim) * DTypeSize(t.meta.dtype);
  for (int64_t h = 0; h < heads; ++h) {
    for (int64_t k = 0; k < tokens; ++k) {
      std::memcpy(out.bytes.data() + (k * heads + h) * row, t.bytes.data() + (h * tokens + k) * row,
                  row);
    }
  }
  return out;
}

// The same inputs on every build: fixed slices of the real dumps and seeded random bits.
absl::StatusOr<std::vector<NamedInput>> Inputs(const std::string& kv) {
  struct Slice {
    const char* run;
    int layer;
    Kind kind;
    DType dtype;
    int64_t tokens;
    bool token_major;
  };
  static constexpr Slice kSlices[] = {
      {"story_prose", 0, Kind::kKey, DType::kFP16, 64, false},
      {"story_prose", 0, Kind::kValue, DType::kFP16, 64, false},
      {"technical_prose", 3, Kind::kKey, DType::kFP32, 61, false},
      {"technical_prose", 3, Kind::kValue, DType::kFP32, 61, false},
      {"mmlu_fewshot_q1", 1, Kind::kKey, DType::kBF16, 64, false},
      {"mmlu_fewshot_q1", 1, Kind::kValue, DType::kBF16, 64, false},
      {"generated_greedy", 2, Kind::kValue, DType::kFP16, 45, true},
  };
  std::vector<NamedInput> out;
  for (const Slice& s : kSlices) {
    auto t = tools::LoadKvSlice(kv, s.run, s.layer, s.kind, s.dtype, s.tokens);
    if (!t.ok()) return t.status();
    if (s.token_major) *t = ToTokenMajor(*t);
    out.push_back({absl::StrCat(s.run, "/layer", s.layer, s.kind == Kind::kKey ? "_k_" : "_v_",
                                DTypeName(s.dtype), "_", s.tokens, s.token_major ? "_tm" : ""),
                   std::move(*t)});
  }
  out.push_back(
      {"random/fp16_2x33x8", testing::RandomBitsTensor(DType::kFP16, {2, 33, 8}, 1), true});
  out.push_back(
      {"random/fp32_2x17x8", testing::RandomBitsTensor(DType::kFP32, {2, 17, 8}, 2), true});
  out.push_back(
      {"random/bf16_3x11x8", testing::RandomBitsTensor(DType::kBF16, {3, 11, 8}, 3), true});
  return out;
}

std::vector<uint8_t> ReadFile(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), {});
}

struct Entry {
  std::string file, input, spec;
  bool lossless = true;
  std::string meta, source_sha256, decoded_sha256, frame_sha256;
};

int Encode(const std::string& kv, const fs::path& out) {
  auto inputs = Inputs(kv);
  if (!inputs.ok()) {
    std::fprintf(stderr, "encode: %s\n", inputs.status().ToString().c_str());
    return 1;
  }
  // Examples per dtype (some stages take one dtype only, such as cast: FP32); a stage or
  // preset counts as uncovered when no dtype has an example of it.
  std::vector<std::pair<DType, tools::Example>> examples;
  std::map<std::string, int> missing;
  const DType kDTypes[] = {DType::kFP16, DType::kFP32, DType::kBF16};
  for (DType dtype : kDTypes) {
    std::vector<Tensor> probes;
    for (const auto& in : *inputs) {
      if (!in.random_bits && in.tensor.meta.dtype == dtype) probes.push_back(in.tensor);
    }
    std::vector<std::string> uncovered;
    for (auto& ex : tools::ExampleSpecs(probes, &uncovered)) examples.push_back({dtype, ex});
    for (const auto& u : uncovered) ++missing[u];
  }
  std::vector<std::string> uncovered;
  for (const auto& [what, count] : missing) {
    if (static_cast<size_t>(count) == std::size(kDTypes)) uncovered.push_back(what);
  }
  for (const auto& u : uncovered) std::fprintf(stderr, "encode: no example for %s\n", u.c_str());
  fs::create_directories(out);
  std::string manifest = "# file\tinput\tspec\tlossless\tmeta\tsource\tdecoded\tframe (SHA-256)\n";
  std::set<uint8_t> stage_ids;
  int failures = 0, frames = 0;
  for (const auto& [dtype, ex] : examples) {
    auto codec = MakeCodec(ex.spec);
    if (!codec.ok()) {
      std::fprintf(stderr, "encode: %s: %s\n", ex.spec.c_str(), codec.status().ToString().c_str());
      ++failures;
      continue;
    }
    for (const auto& in : *inputs) {
      if (in.tensor.meta.dtype != dtype) continue;
      auto c = (*codec)->Compress(in.tensor.view());
      if (in.random_bits && (!c.ok() || !c->report.lossless)) continue;  // lossy: finite only
      auto back = c.ok() ? Decompress(c->frame) : absl::StatusOr<Tensor>(c.status());
      if (!back.ok()) {
        std::fprintf(stderr, "encode: %s on %s: %s\n", ex.spec.c_str(), in.name.c_str(),
                     back.status().ToString().c_str());
        ++failures;
        continue;
      }
      if (c->report.lossless && back->bytes != in.tensor.bytes) {
        std::fprintf(stderr, "encode: %s on %s: lossless, yet not bit-exact on this build\n",
                     ex.spec.c_str(), in.name.c_str());
        ++failures;
      }
      if (auto parsed = ParseFrame(c->frame); parsed.ok()) {
        for (const FrameStage& st : parsed->header.stages) stage_ids.insert(st.id);
      }
      const std::string file = absl::StrFormat("%05d.kvc", frames++);
      std::ofstream(out / file, std::ios::binary)
          .write(reinterpret_cast<const char*>(c->frame.data()),
                 static_cast<std::streamsize>(c->frame.size()));
      absl::StrAppend(&manifest, file, "\t", in.name, "\t", ex.spec, "\t",
                      c->report.lossless ? "lossless" : "lossy", "\t",
                      testing::MetaString(back->meta), "\t", testing::Sha256Hex(in.tensor.bytes),
                      "\t", testing::Sha256Hex(back->bytes), "\t", testing::Sha256Hex(c->frame),
                      "\n");
    }
  }
  std::ofstream(out / kManifest) << manifest;
  // Every registered stage must be in some frame, or the other build never decodes it.
  for (const auto& info : StageRegistry::Get().all()) {
    if (!stage_ids.count(info->id)) {
      std::fprintf(stderr, "encode: no frame holds stage %s (id %d)\n",
                   std::string(info->name).c_str(), info->id);
      ++failures;
    }
  }
  std::printf("encode: %d frames from %zu examples (spec, dtype) and %zu inputs into %s\n", frames,
              examples.size(), inputs->size(), out.c_str());
  return failures || !uncovered.empty() ? 1 : 0;
}

int Decode(const std::string& kv, const fs::path& dir) {
  std::ifstream mf(dir / kManifest);
  if (!mf) {
    std::fprintf(stderr, "decode: cannot read %s\n", (dir / kManifest).c_str());
    return 1;
  }
  auto inputs = Inputs(kv);
  if (!inputs.ok()) {
    std::fprintf(stderr, "decode: %s\n", inputs.status().ToString().c_str());
    return 1;
  }
  std::map<std::string, const Tensor*> by_name;
  for (const auto& in : *inputs) by_name[in.name] = &in.tensor;
  int passed = 0, failed = 0, identical = 0;
  std::vector<std::string> differ;  // the first few frames this build encodes differently
  std::string line;
  while (std::getline(mf, line)) {
    if (line.empty() || line[0] == '#') continue;
    const std::vector<std::string> c = absl::StrSplit(line, '\t');
    auto fail = [&](const std::string& why) {
      ++failed;
      std::fprintf(stderr, "decode: FAIL %s: %s\n", line.c_str(), why.c_str());
    };
    if (c.size() != 8) {
      fail("bad manifest line");
      continue;
    }
    const Entry e{c[0], c[1], c[2], c[3] == "lossless", c[4], c[5], c[6], c[7]};
    const auto frame = ReadFile(dir / e.file);
    if (testing::Sha256Hex(frame) != e.frame_sha256) {
      fail("frame file differs from the one written");
      continue;
    }
    auto back = Decompress(frame);
    if (!back.ok()) {
      fail(back.status().ToString());
      continue;
    }
    const std::string decoded = testing::Sha256Hex(back->bytes);
    const auto src = by_name.find(e.input);
    if (testing::MetaString(back->meta) != e.meta) {
      fail("header decodes to " + testing::MetaString(back->meta));
      continue;
    }
    if (decoded != e.decoded_sha256) {
      fail("decodes to different bytes than on the encoding build");
      continue;
    }
    if (e.lossless && decoded != e.source_sha256) {
      fail("lossless, yet not the source");
      continue;
    }
    if (src == by_name.end() || testing::Sha256Hex(src->second->bytes) != e.source_sha256) {
      fail("this build's input " + e.input + " is not the one the frame was made from");
      continue;
    }
    // The same codec must work on both builds; its frames need only decode the same, so
    // byte-identical re-encoding is reported, not required.
    auto codec = MakeCodec(e.spec);
    auto again = codec.ok() ? (*codec)->Compress(src->second->view())
                            : absl::StatusOr<CompressedTensor>(codec.status());
    if (!again.ok()) {
      fail("compresses on the encoding build, not on this one: " + again.status().ToString());
      continue;
    }
    ++passed;
    if (again->frame == frame) {
      ++identical;
    } else if (differ.size() < 5) {
      differ.push_back(e.input + " " + e.spec);
    }
  }
  if (passed + failed == 0) std::fprintf(stderr, "decode: no frames in %s\n", dir.c_str());
  std::printf("decode: %d of %d frames re-encode byte-identically on this build\n", identical,
              passed + failed);
  for (const auto& d : differ) std::printf("decode:   re-encodes differently: %s\n", d.c_str());
  std::printf("roundtrip: %d passed, %d failed\n", passed, failed);
  return failed == 0 && passed > 0 ? 0 : 1;
}

int Main(int argc, char** argv) {
  std::string kv = KVCOMP_SHARED_KV, mode, dir;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--kv" && i + 1 < argc) {
      kv = argv[++i];
    } else if (mode.empty()) {
      mode = a;
    } else if (dir.empty()) {
      dir = a;
    } else {
      mode.clear();
      break;
    }
  }
  if (mode == "encode" && !dir.empty()) return Encode(kv, dir);
  if (mode == "decode" && !dir.empty()) return Decode(kv, dir);
  std::fprintf(stderr, "usage: kvcomp-core-roundtrip encode|decode [--kv DIR] DIR\n");
  return 2;
}

}  // namespace
}  // namespace kvcomp

int main(int argc, char** argv) { return kvcomp::Main(argc, argv); }

// make_golden --add | --all [--kv DIR] [--out DIR]
//
// Writes the golden frames of tests/golden/ (see docs/RELIABILITY.md) from the first 32 tokens
// of real KV tensors: the curated list below, plus one frame for every registered stage or
// preset that no frame covers yet.
//   --add  writes only frames that are missing; the frames already there stay byte for byte.
//          Run it after registering a new stage or preset.
//   --all  rewrites every frame: a deliberate format change, to be committed as one.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "core/kvcomp/codec.h"
#include "core/kvcomp/preset.h"
#include "core/kvcomp/registry.h"
#include "tests/core/golden_manifest.h"
#include "tests/core/sha256.h"
#include "tests/tools/examples.h"

namespace kvcomp {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kTokens = 32;

struct Recipe {
  std::string file;
  std::string spec;
  std::string run;
  int layer;
  Kind kind;
  DType dtype;
};

// One frame per released stage, parameter family and preset; K and V, every dtype.
const std::vector<Recipe>& Curated() {
  static const auto* recipes = new std::vector<Recipe>{
      {"zstd3_k_fp16", "zstd(3)", "story_prose", 0, Kind::kKey, DType::kFP16},
      {"zstd3_v_fp16", "zstd(3)", "story_prose", 0, Kind::kValue, DType::kFP16},
      {"zstd19_k_fp32", "zstd(19)", "story_prose", 0, Kind::kKey, DType::kFP32},
      {"zstd-3_v_bf16", "zstd(-3)", "story_prose", 0, Kind::kValue, DType::kBF16},
      {"uquant_k_fp16", "uquant(0.01)+zstd(19)", "story_prose", 0, Kind::kKey, DType::kFP16},
      {"uquant_v_fp16", "uquant(0.01)+zstd(19)", "story_prose", 0, Kind::kValue, DType::kFP16},
      {"uquant_raw_v_fp32", "uquant(0.05)", "story_prose", 0, Kind::kValue, DType::kFP32},
      {"quant_channel_k_fp16", "quant(bits=8,group=channel)+zstd(3)", "story_prose", 0, Kind::kKey,
       DType::kFP16},
      {"quant_token_clip_v_fp16", "quant(bits=4,group=token,clip=0.99)+zstd(3)", "story_prose", 0,
       Kind::kValue, DType::kFP16},
      {"quant_block_k_fp32", "quant(bits=6,group=block,block=32)+zstd(3)", "story_prose", 0,
       Kind::kKey, DType::kFP32},
      {"quant_tensor_raw_v_bf16", "quant(bits=12,group=tensor)", "story_prose", 0, Kind::kValue,
       DType::kBF16},
      {"blocknorm_k_fp16", "blocknorm(block=128,topk=0.02,bits=10)+zstd(3)", "story_prose", 0,
       Kind::kKey, DType::kFP16},
      {"blocknorm_raw_v_fp32", "blocknorm(block=64,topk=0.05,bits=6)", "story_prose", 0,
       Kind::kValue, DType::kFP32},
      {"bounded_k_fp16", "bounded(cos=0.9999,coder=zstd(19))", "story_prose", 0, Kind::kKey,
       DType::kFP16},
      {"bounded_v_fp16", "bounded(cos=0.999,rel_mae=0.05,coder=zstd(3))", "story_prose", 0,
       Kind::kValue, DType::kFP16},
      {"mixed_l0_k_fp16", "mixed(1,zstd(19),bounded(cos=0.9999,coder=zstd(19)))", "story_prose", 0,
       Kind::kKey, DType::kFP16},
      {"mixed_l1_k_fp16", "mixed(1,zstd(19),bounded(cos=0.9999,coder=zstd(19)))", "story_prose", 1,
       Kind::kKey, DType::kFP16},
      {"kv_k_fp16", "kv(k=quant(bits=8,group=channel)+zstd(3),v=quant(bits=8,group=token)+zstd(3))",
       "story_prose", 0, Kind::kKey, DType::kFP16},
      {"kv_v_fp16", "kv(k=quant(bits=8,group=channel)+zstd(3),v=quant(bits=8,group=token)+zstd(3))",
       "story_prose", 0, Kind::kValue, DType::kFP16},
      {"layers_l1_v_fp16", "layers(0=zstd(3),default=blocknorm+zstd(3))", "story_prose", 1,
       Kind::kValue, DType::kFP16},
      // Lossless family (issue 3). cast is lossy only from FP32, so its frames start there.
      {"cast_fp16_huff_k_fp32", "cast(fp16)+huff", "story_prose", 0, Kind::kKey, DType::kFP32},
      {"cast_bf16_cm_v_fp32", "cast(bf16)+cm", "story_prose", 0, Kind::kValue, DType::kFP32},
      {"dedupe_huff_v_fp16", "dedupe+huff", "story_prose", 0, Kind::kValue, DType::kFP16},
      {"dedupe_cm_v_bf16", "dedupe+cm(20)", "story_prose", 0, Kind::kValue, DType::kBF16},
      {"gear_delta_huff_k_fp32", "gear+delta+huff", "story_prose", 1, Kind::kKey, DType::kFP32},
      {"planes_xor_cm_k_fp16", "planes+xor+cm", "story_prose", 1, Kind::kKey, DType::kFP16},
      {"lossless_v_fp16", "lossless", "story_prose", 0, Kind::kValue, DType::kFP16},
      {"lossless_max_k_fp16", "lossless-max", "story_prose", 1, Kind::kKey, DType::kFP16},
      {"gear_rans_k_fp16", "gear+rans", "story_prose", 0, Kind::kKey, DType::kFP16},
      {"planes_rans_v_bf16", "planes+rans", "story_prose", 1, Kind::kValue, DType::kBF16},
      {"reorder_planes_zstd_k_fp16", "reorder+planes+zstd(3)", "story_prose", 1, Kind::kKey,
       DType::kFP16},
      {"uquant_qhuff_k_fp16", "uquant(0.05)+qhuff", "story_prose", 1, Kind::kKey, DType::kFP16},
      {"uquant_qhuff_v_bf16", "uquant(0.005)+qhuff", "story_prose", 0, Kind::kValue, DType::kBF16},
      {"planes_qhuff_k_fp16", "planes+qhuff", "story_prose", 0, Kind::kKey, DType::kFP16},
      {"protect_quant_k_fp16", "protect(sink=2,recent=8)+quant(bits=8)+zstd(3)", "story_prose", 0,
       Kind::kKey, DType::kFP16},
      {"protected_bounded_k_fp16", "protected(sink=2,recent=8,bounded(cos=0.999))", "story_prose",
       0, Kind::kKey, DType::kFP16},
      // Quantised blocks (issue 26): Q8_0 and Q4_0 as llama.cpp caches hold them.
      {"qsplit_qhuff_k_q8_0", "qsplit+qhuff", "story_prose", 1, Kind::kKey, DType::kQ8_0},
      {"qsplit_huff_v_q4_0", "qsplit+huff", "story_prose", 1, Kind::kValue, DType::kQ4_0},
      {"dedupe_qsplit_cm_v_q8_0", "dedupe+qsplit+cm", "story_prose", 0, Kind::kValue, DType::kQ8_0},
      {"lossless_k_q4_0", "lossless", "story_prose", 0, Kind::kKey, DType::kQ4_0},
      {"zstd3_v_q8_0", "zstd(3)", "story_prose", 1, Kind::kValue, DType::kQ8_0},
  };
  return *recipes;
}

std::vector<uint8_t> ReadFile(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), {});
}

// Stage IDs a frame holds, and the preset a spec names, for coverage.
void Cover(const std::vector<uint8_t>& frame, const std::string& spec, std::set<uint8_t>* ids,
           std::set<std::string>* presets) {
  if (auto parsed = ParseFrame(frame); parsed.ok()) {
    for (const FrameStage& st : parsed->header.stages) ids->insert(st.id);
  }
  if (auto s = ParseSpec(spec); s.ok() && s->size() == 1) presets->insert((*s)[0].name);
}

absl::StatusOr<testing::GoldenEntry> Make(const Recipe& r, const std::string& kv,
                                          const fs::path& out) {
  auto tensor = tools::LoadKvSlice(kv, r.run, r.layer, r.kind, r.dtype, kTokens);
  if (!tensor.ok()) return tensor.status();
  auto codec = MakeCodec(r.spec);
  if (!codec.ok()) return codec.status();
  auto c = (*codec)->Compress(tensor->view());
  if (!c.ok()) return c.status();
  auto back = Decompress(c->frame);
  if (!back.ok()) return back.status();
  testing::GoldenEntry e;
  e.file = r.file + ".kvc";
  e.spec = r.spec;
  e.recorded = c->report.spec;
  e.lossless = c->report.lossless;
  e.meta = testing::MetaString(back->meta);
  e.decoded_sha256 = testing::Sha256Hex(back->bytes);
  e.source_sha256 = testing::Sha256Hex(tensor->bytes);
  std::ofstream(out / e.file, std::ios::binary)
      .write(reinterpret_cast<const char*>(c->frame.data()),
             static_cast<std::streamsize>(c->frame.size()));
  std::printf("  wrote %-28s %5zu bytes  %s\n", e.file.c_str(), c->frame.size(),
              e.recorded.c_str());
  return e;
}

int Main(int argc, char** argv) {
  bool all = false, add = false;
  std::string kv = KVCOMP_SHARED_KV, out = KVCOMP_GOLDEN_DIR;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--all") {
      all = true;
    } else if (a == "--add") {
      add = true;
    } else if (a == "--kv" && i + 1 < argc) {
      kv = argv[++i];
    } else if (a == "--out" && i + 1 < argc) {
      out = argv[++i];
    } else {
      add = all = false;
      break;
    }
  }
  if (add == all) {
    std::fprintf(stderr,
                 "usage: make_golden --add | --all [--kv DIR] [--out DIR]\n"
                 "  --add  write missing golden frames only\n"
                 "  --all  rewrite every golden frame (a format change)\n");
    return 2;
  }
  fs::create_directories(out);
  std::vector<testing::GoldenEntry> entries;
  std::set<std::string> listed;
  if (add) {
    if (auto old = testing::ReadGoldenManifest(fs::path(out) / testing::kGoldenManifest);
        old.ok()) {
      entries = std::move(*old);
    }
    for (const auto& e : entries) listed.insert(e.file);
  }
  std::set<uint8_t> ids;
  std::set<std::string> presets;
  for (const auto& e : entries) Cover(ReadFile(fs::path(out) / e.file), e.spec, &ids, &presets);

  std::vector<std::string> uncovered;
  auto probe = tools::LoadKvSlice(kv, "story_prose", 0, Kind::kKey, DType::kFP16, kTokens);
  if (!probe.ok()) {
    std::fprintf(stderr, "make_golden: %s\n", probe.status().ToString().c_str());
    return 1;
  }
  auto q8 = tools::LoadKvSlice(kv, "story_prose", 0, Kind::kKey, DType::kQ8_0, kTokens);
  if (!q8.ok()) {
    std::fprintf(stderr, "make_golden: %s\n", q8.status().ToString().c_str());
    return 1;
  }
  const auto examples = tools::ExampleSpecs({*probe, *q8}, &uncovered);
  int failures = 0;
  auto run = [&](const Recipe& r) {
    if (listed.count(r.file + ".kvc")) return;
    auto e = Make(r, kv, out);
    if (!e.ok()) {
      std::fprintf(stderr, "make_golden: %s (%s): %s\n", r.file.c_str(), r.spec.c_str(),
                   e.status().ToString().c_str());
      ++failures;
      return;
    }
    Cover(ReadFile(fs::path(out) / e->file), e->spec, &ids, &presets);
    listed.insert(e->file);
    entries.push_back(std::move(*e));
  };
  for (const Recipe& r : Curated()) run(r);
  // Anything registered that the list does not reach yet gets its first working example.
  for (const auto& ex : examples) {
    const StageInfo* stage = StageRegistry::Get().FindByName(ex.covers);
    const bool covered = stage ? ids.count(stage->id) > 0 : presets.count(ex.covers) > 0;
    if (!covered) run({"auto_" + ex.covers, ex.spec, "story_prose", 0, Kind::kKey, DType::kFP16});
  }
  std::ofstream(fs::path(out) / testing::kGoldenManifest) << testing::FormatGoldenManifest(entries);
  std::printf("make_golden: %zu frames listed in %s\n", entries.size(),
              (fs::path(out) / testing::kGoldenManifest).c_str());
  for (const auto& u : uncovered)
    std::fprintf(stderr, "make_golden: no example for %s\n", u.c_str());
  return failures || !uncovered.empty() ? 1 : 0;
}

}  // namespace
}  // namespace kvcomp

int main(int argc, char** argv) { return kvcomp::Main(argc, argv); }

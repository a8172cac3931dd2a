// Golden frames: the frames checked in under tests/golden/ must decode, today and on every
// platform, to exactly the bytes recorded when they were written. The format never changes
// silently: regenerating them (tests/tools/make_golden) is a deliberate format change.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>

#include "core/kvcomp/codec.h"
#include "core/kvcomp/preset.h"
#include "core/kvcomp/registry.h"
#include "tests/core/golden_manifest.h"
#include "tests/core/sha256.h"

namespace kvcomp {
namespace {

namespace fs = std::filesystem;

std::vector<uint8_t> ReadGoldenFile(const std::string& name) {
  std::ifstream f(fs::path(KVCOMP_GOLDEN_DIR) / name, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), {});
}

std::vector<testing::GoldenEntry> Manifest() {
  auto m = testing::ReadGoldenManifest(fs::path(KVCOMP_GOLDEN_DIR) / testing::kGoldenManifest);
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? *m : std::vector<testing::GoldenEntry>{};
}

TEST(Sha256Test, MatchesFipsVectors) {
  auto hex = [](absl::string_view s) {
    return testing::Sha256Hex(
        absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
  };
  EXPECT_EQ(hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(GoldenTest, EveryFrameDecodesToItsRecordedBytes) {
  const auto entries = Manifest();
  ASSERT_FALSE(entries.empty());
  for (const auto& e : entries) {
    SCOPED_TRACE(e.file + " (" + e.spec + ")");
    const auto frame = ReadGoldenFile(e.file);
    ASSERT_FALSE(frame.empty()) << "missing or empty";
    auto back = Decompress(frame);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(testing::MetaString(back->meta), e.meta);
    EXPECT_EQ(testing::Sha256Hex(back->bytes), e.decoded_sha256);
    if (e.lossless) {
      EXPECT_EQ(e.decoded_sha256, e.source_sha256) << "lossless, yet not the source";
    } else {
      EXPECT_NE(e.decoded_sha256, e.source_sha256) << "lossy, yet exact";
    }
  }
}

// The header is the format too: the recorded pipeline, and the writer reproducing every byte.
TEST(GoldenTest, EveryHeaderReadsAndWritesBackUnchanged) {
  for (const auto& e : Manifest()) {
    SCOPED_TRACE(e.file);
    const auto frame = ReadGoldenFile(e.file);
    auto parsed = ParseFrame(frame);
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(parsed->frame_bytes, frame.size());
    std::string spec;
    bool lossless = true;
    for (const FrameStage& st : parsed->header.stages) {
      auto stage = StageRegistry::Get().Create(st.id, st.values);
      ASSERT_TRUE(stage.ok()) << stage.status();
      absl::StrAppend(&spec, spec.empty() ? "" : "+", (*stage)->Spec());
      lossless = lossless && (*stage)->lossless();
    }
    EXPECT_EQ(spec, e.recorded);
    EXPECT_EQ(lossless, e.lossless);
    EXPECT_EQ(WriteFrame(parsed->header, parsed->streams).value(), frame);
  }
}

// A golden set for every codec this build can write: registering a stage or preset means
// adding its frame (`make_golden --add`, see docs/RELIABILITY.md).
TEST(GoldenTest, EveryRegisteredStageAndPresetHasAFrame) {
  std::set<uint8_t> ids;
  std::set<std::string> presets;
  for (const auto& e : Manifest()) {
    if (auto parsed = ParseFrame(ReadGoldenFile(e.file)); parsed.ok()) {
      for (const FrameStage& st : parsed->header.stages) ids.insert(st.id);
    }
    if (auto spec = ParseSpec(e.spec); spec.ok() && spec->size() == 1) {
      presets.insert((*spec)[0].name);
    }
  }
  for (const auto& info : StageRegistry::Get().all()) {
    EXPECT_TRUE(ids.count(info->id)) << "stage '" << info->name << "' (id " << int(info->id)
                                     << ") has no golden frame: run make_golden --add";
  }
  for (const PresetInfo& p : PresetRegistry::Get().all()) {
    EXPECT_TRUE(presets.count(std::string(p.name)))
        << "preset '" << p.name << "' has no golden frame: run make_golden --add";
  }
}

TEST(GoldenTest, EveryCheckedInFrameIsListed) {
  std::set<std::string> listed;
  for (const auto& e : Manifest()) listed.insert(e.file);
  for (const auto& f : fs::directory_iterator(KVCOMP_GOLDEN_DIR)) {
    if (f.path().extension() == ".kvc") {
      EXPECT_TRUE(listed.count(f.path().filename().string())) << f.path() << " is not listed";
    }
  }
}

}  // namespace
}  // namespace kvcomp

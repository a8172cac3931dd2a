// .npz (zip) reader and writer against archives numpy wrote, and corrupted archives.
#include "client/io/npz.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "client/io/dump.h"
#include "client/io/sha256.h"
#include "client/io/zip.h"
#include "gtest/gtest.h"
#include "tests/client/test_util.h"

namespace kvcomp::io {
namespace {

using kvcomp::testing::MakeCache;
using kvcomp::testing::ReadAll;
using kvcomp::testing::RunPython;
using kvcomp::testing::SharedKvDir;
using kvcomp::testing::TempDir;

const char* kRuns[] = {"story_prose", "technical_prose", "mmlu_fewshot_q1", "generated_greedy"};

// Prints "name sha256" for each array of an .npz, as numpy sees it.
std::string NumpyDigests(const std::string& path) {
  return RunPython(absl::StrCat(R"(
import numpy as np, hashlib
z = np.load(")",
                                path, R"(")
for k in sorted(z.files):
    if k.endswith(".json"): continue
    a = z[k]
    print(k, str(a.dtype), "x".join(map(str, a.shape)), hashlib.sha256(a.tobytes()).hexdigest())
)"));
}

std::string OurDigests(const KvCache& cache) {
  std::vector<std::string> lines;
  for (const NamedTensor& t : cache) {
    const char* dt = t.tensor.meta.dtype == DType::kFP32   ? "float32"
                     : t.tensor.meta.dtype == DType::kFP16 ? "float16"
                                                           : "uint16";
    std::string shape;
    for (size_t i = 0; i < t.tensor.meta.shape.size(); ++i) {
      absl::StrAppend(&shape, i ? "x" : "", t.tensor.meta.shape[i]);
    }
    lines.push_back(absl::StrCat(t.name, " ", dt, " ", shape, " ", Sha256Hex(t.tensor.bytes)));
  }
  std::sort(lines.begin(), lines.end());
  std::string out;
  for (const auto& l : lines) absl::StrAppend(&out, l, "\n");
  return out;
}

TEST(NpzTest, SharedArchivesMatchTheirDumpFolders) {
  const std::string shared = SharedKvDir();
  if (shared.empty()) GTEST_SKIP() << "../shared/kv is absent";
  for (const char* run : kRuns) {
    for (DType dtype : {DType::kFP16, DType::kFP32}) {
      const std::string npz =
          absl::StrCat(shared, "/", run, dtype == DType::kFP16 ? ".fp16.npz" : ".fp32.npz");
      std::vector<std::string> skipped;
      auto cache = ReadNpzFile(npz, &skipped);
      ASSERT_TRUE(cache.ok()) << cache.status();
      ASSERT_EQ(cache->size(), 10u) << npz;
      // The archives also hold token ids and a metadata string: not KV tensors.
      ASSERT_EQ(skipped.size(), 2u) << npz;
      EXPECT_EQ(skipped[0], "token_ids (<i4)");
      EXPECT_EQ(skipped[1].substr(0, 13), "meta_json (<U");
      DumpReadOptions opts;
      opts.dtype = dtype;
      auto dump = ReadDumpDir(absl::StrCat(shared, "/", run), opts);
      ASSERT_TRUE(dump.ok()) << dump.status();
      for (const NamedTensor& t : *cache) {
        auto it = std::find_if(dump->begin(), dump->end(),
                               [&](const NamedTensor& d) { return d.name == t.name; });
        ASSERT_NE(it, dump->end()) << t.name;
        EXPECT_EQ(t.tensor.meta.dtype, dtype);
        EXPECT_EQ(t.tensor.meta.shape, it->tensor.meta.shape);
        EXPECT_EQ(t.tensor.meta.layer, it->tensor.meta.layer);
        EXPECT_EQ(t.tensor.meta.kind, it->tensor.meta.kind);
        EXPECT_TRUE(t.tensor.bytes == it->tensor.bytes) << npz << " " << t.name;
      }
    }
  }
}

TEST(NpzTest, ReadsSavezAndSavezCompressed) {
  TempDir dir;
  RunPython(absl::StrCat(R"(
import numpy as np
rng = np.random.default_rng(3)
arrs = {"layer%d_%s" % (l, kv): (rng.standard_normal((4, 33, 8)) * (l + 1)).astype("<f2")
        for l in range(3) for kv in "kv"}
arrs["extra"] = np.zeros((2, 2), "<f4")
np.savez(")",
                         dir / "stored.npz", R"(", **arrs)
np.savez_compressed(")",
                         dir / "deflate.npz", R"(", **arrs)
)"));
  for (const char* name : {"stored.npz", "deflate.npz"}) {
    auto cache = ReadNpzFile(dir / name);
    ASSERT_TRUE(cache.ok()) << name << ": " << cache.status();
    ASSERT_EQ(cache->size(), 7u);
    EXPECT_EQ(OurDigests(*cache), NumpyDigests(dir / name)) << name;
    for (const NamedTensor& t : *cache) {
      if (t.name == "extra") {
        EXPECT_EQ(t.tensor.meta.layer, -1);
        EXPECT_EQ(t.tensor.meta.kind, Kind::kUnspecified);
      } else {
        EXPECT_GE(t.tensor.meta.layer, 0);
        EXPECT_NE(t.tensor.meta.kind, Kind::kUnspecified);
      }
    }
  }
}

TEST(NpzTest, NumpyLoadsWhatWeWriteIncludingZip64) {
  TempDir dir;
  const KvCache cache = MakeCache(DType::kFP16, 3, 4, 20, 8, 11);
  for (bool zip64 : {false, true}) {
    const std::string path = dir / (zip64 ? "z64.npz" : "plain.npz");
    ZipWriteOptions opts;
    opts.force_zip64 = zip64;
    ASSERT_TRUE(WriteNpzFile(path, cache, opts).ok());
    EXPECT_EQ(NumpyDigests(path), OurDigests(cache)) << path;
    // Python's zipfile also checks every CRC and structure field.
    RunPython(
        absl::StrCat("import zipfile\nassert zipfile.ZipFile('", path, "').testzip() is None"));
    auto back = ReadNpzFile(path);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(OurDigests(*back), OurDigests(cache));
  }
  EXPECT_TRUE(kvcomp::testing::ListDir(dir.path()) ==
              (std::vector<std::string>{"plain.npz", "z64.npz"}));  // no temp files left
}

TEST(NpzTest, Bf16AndTokenMajorSurviveViaTheSidecar) {
  TempDir dir;
  KvCache cache = MakeCache(DType::kBF16, 1, 2, 5, 4, 5);
  cache[1].tensor.meta.layout = Layout::kTokenMajor;
  const std::string path = dir / "bf16.npz";
  ASSERT_TRUE(WriteNpzFile(path, cache).ok());
  auto back = ReadNpzFile(path);
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ((*back)[i].tensor.meta.dtype, DType::kBF16);
    EXPECT_EQ((*back)[i].tensor.meta.layout, cache[i].tensor.meta.layout);
    EXPECT_EQ((*back)[i].tensor.bytes, cache[i].tensor.bytes);
  }
  // numpy still opens it: uint16 arrays plus the kvcomp.json member.
  RunPython(absl::StrCat("import numpy as np, json\nz = np.load('", path, R"(')
assert sorted(z.files) == ['kvcomp.json', 'layer0_k', 'layer0_v'], z.files
assert z['layer0_k'].dtype == np.uint16
)"));
}

std::vector<uint8_t> SmallNpz(TempDir& dir, bool compressed) {
  const std::string path = dir / (compressed ? "small_c.npz" : "small.npz");
  RunPython(absl::StrCat("import numpy as np\nnp.", compressed ? "savez_compressed" : "savez", "('",
                         path,
                         "', layer0_k=np.arange(24, dtype='<f2').reshape(2,3,4), "
                         "layer0_v=np.ones((2,3,4), '<f2'))"));
  return ReadAll(path);
}

TEST(NpzTest, EveryTruncationPointIsAnError) {
  TempDir dir;
  for (bool compressed : {false, true}) {
    const std::vector<uint8_t> full = SmallNpz(dir, compressed);
    ASSERT_TRUE(ParseNpz(full, "full").ok());
    for (size_t n = 0; n < full.size(); ++n) {
      auto r = ParseNpz(absl::MakeConstSpan(full.data(), n), "cut");
      ASSERT_FALSE(r.ok()) << "prefix " << n << " of " << full.size() << " parsed";
    }
  }
}

TEST(NpzTest, EveryFlippedByteIsAnErrorOrHarmless) {
  // A flip may land in a field nobody reads (timestamps, attributes); it must then give the
  // same tensors. Anything else must be an error.
  TempDir dir;
  for (bool compressed : {false, true}) {
    const std::vector<uint8_t> full = SmallNpz(dir, compressed);
    auto want = ParseNpz(full, "full");
    ASSERT_TRUE(want.ok());
    int errors = 0;
    for (size_t i = 0; i < full.size(); ++i) {
      std::vector<uint8_t> bad = full;
      bad[i] ^= 0x5A;
      auto r = ParseNpz(bad, "flip");
      if (!r.ok()) {
        ++errors;
        continue;
      }
      ASSERT_EQ(OurDigests(*r), OurDigests(*want)) << "flip at " << i << " changed the data";
    }
    EXPECT_GT(errors, static_cast<int>(full.size() / 2));
  }
}

TEST(NpzTest, StructuralErrorsAreNamed) {
  TempDir dir;
  std::vector<uint8_t> full = SmallNpz(dir, false);
  // Corrupt the data of the first member: the CRC catches it.
  const size_t data = 30 + std::string("layer0_k.npy").size();
  std::vector<uint8_t> bad = full;
  auto first_extra = bad[28] | (bad[29] << 8);
  bad[data + first_extra + 100] ^= 1;
  auto crc = ParseNpz(bad, "crc");
  ASSERT_FALSE(crc.ok());
  EXPECT_EQ(crc.status().code(), absl::StatusCode::kDataLoss) << crc.status();
  EXPECT_NE(crc.status().message().find("CRC"), absl::string_view::npos);

  auto not_zip = ParseNpz(std::vector<uint8_t>(100, 7), "junk");
  EXPECT_NE(not_zip.status().message().find("end-of-central-directory"), absl::string_view::npos);

  // A member that is not an .npy, and an archive with no arrays.
  VectorSink sink;
  const std::string text = "hello";
  ASSERT_TRUE(WriteZip({{"notes.txt",
                         {absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(text.data()), 5)}}},
                       sink)
                  .ok());
  auto txt = ParseNpz(sink.bytes, "txt");
  EXPECT_NE(txt.status().message().find("not an .npy"), absl::string_view::npos) << txt.status();
  VectorSink empty;
  ASSERT_TRUE(WriteZip({}, empty).ok());
  auto none = ParseNpz(empty.bytes, "empty");
  EXPECT_NE(none.status().message().find("no KV arrays"), absl::string_view::npos) << none.status();
}

TEST(NpzTest, WriterRejectsBadOrDuplicateNames) {
  TempDir dir;
  KvCache cache = MakeCache(DType::kFP16, 1, 1, 2, 2, 1);
  cache[1].name = cache[0].name;
  EXPECT_FALSE(WriteNpzFile(dir / "dup.npz", cache).ok());
  cache[1].name = "../evil";
  EXPECT_FALSE(WriteNpzFile(dir / "evil.npz", cache).ok());
  EXPECT_TRUE(kvcomp::testing::ListDir(dir.path()).empty());
}

}  // namespace
}  // namespace kvcomp::io

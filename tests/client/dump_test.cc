// Dump folders: the real ../shared/kv runs, byte-identical write-back, malformed manifests,
// atomic folder writes. Also SHA-256 and the tensor-name helpers the format relies on.
#include "client/io/dump.h"

#include <filesystem>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "client/io/file_util.h"
#include "client/io/kv_io.h"
#include "client/io/sha256.h"
#include "gtest/gtest.h"
#include "tests/client/test_util.h"

namespace kvcomp::io {
namespace {

using kvcomp::testing::Bytes;
using kvcomp::testing::ListDir;
using kvcomp::testing::MakeCache;
using kvcomp::testing::ReadAll;
using kvcomp::testing::SharedKvDir;
using kvcomp::testing::TempDir;
using nlohmann::json;

TEST(Sha256Test, KnownVectorsAndChunking) {
  EXPECT_EQ(Sha256Hex({}), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex(Bytes("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex(Bytes("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  std::vector<uint8_t> million(1000000, 'a');
  EXPECT_EQ(Sha256Hex(million), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  Sha256 chunked;
  for (size_t i = 0; i < million.size(); i += 7777) {
    chunked.Update(
        absl::MakeConstSpan(million.data() + i, std::min<size_t>(7777, million.size() - i)));
  }
  const auto d = chunked.Finish();
  EXPECT_EQ(d[0], 0xcd);
  EXPECT_EQ(d[31], 0xd0);
}

TEST(TensorNameTest, LayerAndKindFromNames) {
  EXPECT_EQ(ParseTensorName("layer0_k"), std::make_pair(0, Kind::kKey));
  EXPECT_EQ(ParseTensorName("layer31_V"), std::make_pair(31, Kind::kValue));
  EXPECT_FALSE(ParseTensorName("layer_k").has_value());
  EXPECT_FALSE(ParseTensorName("layer3_q").has_value());
  EXPECT_FALSE(ParseTensorName("layer3_kk").has_value());
  EXPECT_FALSE(ParseTensorName("layer99999999999_k").has_value());
  EXPECT_FALSE(ParseTensorName("xlayer1_k").has_value());
  EXPECT_EQ(CanonicalTensorName(4, Kind::kValue, 9), "layer4_v");
  EXPECT_EQ(CanonicalTensorName(-1, Kind::kValue, 9), "tensor9");
  EXPECT_TRUE(IsSafeTensorName("layer0_k.f16"));
  EXPECT_FALSE(IsSafeTensorName(".."));
  EXPECT_FALSE(IsSafeTensorName("a/b"));
  EXPECT_FALSE(IsSafeTensorName(""));
}

TEST(DumpTest, ReadsEverySharedRunInBothDtypes) {
  const std::string shared = SharedKvDir();
  if (shared.empty()) GTEST_SKIP() << "../shared/kv is absent";
  for (const char* run :
       {"story_prose", "technical_prose", "mmlu_fewshot_q1", "generated_greedy"}) {
    const std::string dir = absl::StrCat(shared, "/", run);
    for (std::optional<DType> dtype :
         std::vector<std::optional<DType>>{std::nullopt, DType::kFP16, DType::kFP32}) {
      DumpReadOptions opts;
      opts.dtype = dtype;
      auto cache = ReadDumpDir(dir, opts);
      ASSERT_TRUE(cache.ok()) << cache.status();
      ASSERT_EQ(cache->size(), 10u);
      const DType want = dtype.value_or(DType::kFP16);  // FP16 is the default
      for (size_t i = 0; i < cache->size(); ++i) {
        const NamedTensor& t = (*cache)[i];
        EXPECT_EQ(t.tensor.meta.layer, static_cast<int>(i / 2));
        EXPECT_EQ(t.tensor.meta.kind, i % 2 == 0 ? Kind::kKey : Kind::kValue);
        EXPECT_EQ(t.tensor.meta.dtype, want);
        EXPECT_EQ(t.tensor.meta.shape.size(), 3u);
        EXPECT_EQ(t.tensor.meta.shape[0], 4);
        EXPECT_EQ(t.tensor.meta.shape[2], 8);
        EXPECT_EQ(t.tensor.bytes, ReadAll(absl::StrCat(dir, "/", DumpFileName(t))));
      }
    }
  }
}

TEST(DumpTest, WriteBackIsByteIdenticalWithAManifest) {
  const std::string shared = SharedKvDir();
  if (shared.empty()) GTEST_SKIP() << "../shared/kv is absent";
  TempDir tmp;
  const std::string src = shared + "/story_prose";
  for (DType dtype : {DType::kFP16, DType::kFP32}) {
    DumpReadOptions opts;
    opts.dtype = dtype;
    auto cache = ReadDumpDir(src, opts);
    ASSERT_TRUE(cache.ok());
    const std::string out = tmp / (dtype == DType::kFP16 ? "f16" : "f32");
    ASSERT_TRUE(WriteKvCache(out, *cache).ok());
    const std::vector<std::string> files = ListDir(out);
    ASSERT_EQ(files.size(), 11u);
    for (const std::string& f : files) {
      if (f == "manifest.json") continue;
      EXPECT_EQ(ReadAll(out + "/" + f), ReadAll(src + "/" + f)) << f;
    }
    // The manifest lists the same sha256 as the original for each file.
    const auto ours = json::parse(ReadAll(out + "/manifest.json"));
    const auto theirs = json::parse(ReadAll(src + "/manifest.json"));
    int matched = 0;
    for (const auto& f : ours["files"]) {
      for (const auto& g : theirs["files"]) {
        if (g["file"] == f["file"]) {
          EXPECT_EQ(f["sha256"], g["sha256"]);
          EXPECT_EQ(f["shape"], g["shape"]);
          EXPECT_EQ(f["layer"], g["layer"]);
          EXPECT_EQ(f["tensor"], g["tensor"]);
          ++matched;
        }
      }
    }
    EXPECT_EQ(matched, 10);
    auto again = ReadDumpDir(out);
    ASSERT_TRUE(again.ok()) << again.status();
    for (size_t i = 0; i < again->size(); ++i) {
      EXPECT_EQ((*again)[i].tensor.bytes, (*cache)[i].tensor.bytes);
    }
  }
  EXPECT_EQ(ListDir(tmp.path()), (std::vector<std::string>{"f16", "f32"}));
}

// A valid two-file dump to corrupt.
void WriteSmallDump(const std::string& dir) {
  KvCache cache = MakeCache(DType::kFP16, 1, 2, 3, 4, 9);
  ASSERT_TRUE(WriteDumpDir(dir, cache).ok());
}

void EditManifest(const std::string& dir, const std::function<void(json&)>& edit) {
  json m = json::parse(ReadAll(dir + "/manifest.json"));
  edit(m);
  const std::string text = m.dump();
  kvcomp::testing::WriteAll(dir + "/manifest.json", Bytes(text));
}

TEST(DumpTest, MalformedDumpsAreClearErrors) {
  TempDir tmp;
  struct Case {
    const char* name;
    std::function<void(const std::string&)> corrupt;
    const char* expect;
    absl::StatusCode code = absl::StatusCode::kInvalidArgument;
  };
  const std::vector<Case> cases = {
      {"no_manifest", [](const std::string& d) { std::filesystem::remove(d + "/manifest.json"); },
       "no manifest.json"},
      {"bad_json",
       [](const std::string& d) { kvcomp::testing::WriteAll(d + "/manifest.json", Bytes("{")); },
       "not valid JSON"},
      {"no_files", [](const std::string& d) { EditManifest(d, [](json& m) { m.erase("files"); }); },
       "\"files\""},
      {"wrong_bytes",
       [](const std::string& d) { EditManifest(d, [](json& m) { m["files"][0]["bytes"] = 7; }); },
       "\"bytes\" does not equal"},
      {"bad_sha",
       [](const std::string& d) {
         EditManifest(d, [](json& m) { m["files"][0]["sha256"] = std::string(64, '0'); });
       },
       "sha256 does not match", absl::StatusCode::kDataLoss},
      {"missing_file", [](const std::string& d) { std::filesystem::remove(d + "/layer0_v.f16"); },
       "layer0_v.f16", absl::StatusCode::kNotFound},
      {"short_file",
       [](const std::string& d) { std::filesystem::resize_file(d + "/layer0_k.f16", 10); },
       "10 bytes, but the manifest's shape"},
      {"long_file",
       [](const std::string& d) { std::filesystem::resize_file(d + "/layer0_k.f16", 1000); },
       "1000 bytes, but the manifest's shape"},
      {"traversal",
       [](const std::string& d) {
         EditManifest(d, [](json& m) { m["files"][0]["file"] = "../../etc/passwd"; });
       },
       "unsafe file name"},
      {"absurd_shape",
       [](const std::string& d) {
         EditManifest(d, [](json& m) {
           m["files"][0]["shape"] = {int64_t{1} << 40, int64_t{1} << 40};
           m["files"][0].erase("bytes");
         });
       },
       "too many elements"},
      {"negative_dim",
       [](const std::string& d) {
         EditManifest(d, [](json& m) { m["files"][0]["shape"] = {2, -3, 4}; });
       },
       "negative"},
      {"bad_dtype",
       [](const std::string& d) {
         EditManifest(d, [](json& m) { m["files"][0]["dtype"] = "int8"; });
       },
       "unknown dtype"},
      {"bad_kind",
       [](const std::string& d) {
         EditManifest(d, [](json& m) { m["files"][0]["tensor"] = "Q"; });
       },
       "\"K\" or \"V\""},
      {"listed_twice",
       [](const std::string& d) {
         EditManifest(d, [](json& m) { m["files"].push_back(m["files"][0]); });
       },
       "listed twice"},
  };
  for (const Case& c : cases) {
    const std::string dir = tmp / c.name;
    WriteSmallDump(dir);
    ASSERT_TRUE(ReadDumpDir(dir).ok());
    c.corrupt(dir);
    auto r = ReadDumpDir(dir);
    ASSERT_FALSE(r.ok()) << c.name;
    EXPECT_EQ(r.status().code(), c.code) << c.name << ": " << r.status();
    EXPECT_NE(r.status().message().find(c.expect), absl::string_view::npos)
        << c.name << ": want '" << c.expect << "' in " << r.status();
  }
  // Asking for a dtype the dump does not have.
  const std::string dir = tmp / "fp16_only";
  WriteSmallDump(dir);
  DumpReadOptions fp32;
  fp32.dtype = DType::kFP32;
  auto r = ReadDumpDir(dir, fp32);
  EXPECT_NE(r.status().message().find("has no FP32 file"), absl::string_view::npos) << r.status();
}

TEST(DumpTest, FolderWritesAreAtomic) {
  TempDir tmp;
  const KvCache cache = MakeCache(DType::kFP32, 2, 2, 3, 4, 1);
  // Target exists and is not empty: refused, untouched.
  const std::string busy = tmp / "busy";
  std::filesystem::create_directory(busy);
  kvcomp::testing::WriteAll(busy + "/keep.txt", Bytes("keep"));
  auto s = WriteDumpDir(busy, cache);
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists) << s;
  EXPECT_EQ(ListDir(busy), std::vector<std::string>{"keep.txt"});
  // An existing empty folder is fine.
  const std::string empty = tmp / "empty";
  std::filesystem::create_directory(empty);
  EXPECT_TRUE(WriteDumpDir(empty, cache).ok());
  EXPECT_EQ(ListDir(empty).size(), 5u);
  // A failure midway (a name clash detected before writing, then an unwritable parent) leaves
  // no temporary folder behind.
  EXPECT_FALSE(WriteDumpDir(tmp / "missing/parent/out", cache).ok());
  KvCache bad = cache;
  bad[1].name = "a/b";
  EXPECT_FALSE(WriteDumpDir(tmp / "bad", bad).ok());
  EXPECT_EQ(ListDir(tmp.path()), (std::vector<std::string>{"busy", "empty"}));
  // Through WriteKvCache: an existing dump is only replaced with overwrite.
  EXPECT_EQ(WriteKvCache(empty, cache).code(), absl::StatusCode::kAlreadyExists);
  WriteOptions force;
  force.overwrite = true;
  KvCache other = MakeCache(DType::kFP32, 1, 2, 3, 4, 2);
  ASSERT_TRUE(WriteKvCache(empty, other, force).ok());
  EXPECT_EQ(ListDir(empty).size(), 3u);
  EXPECT_EQ(WriteKvCache(busy, other, force).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(ListDir(tmp.path()), (std::vector<std::string>{"busy", "empty"}));
}

TEST(AtomicFileTest, CommitOrNothing) {
  TempDir tmp;
  const std::string path = tmp / "out.bin";
  {
    auto f = AtomicFile::Open(path);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE((*f)->Write(Bytes("partial")).ok());
    EXPECT_EQ(ListDir(tmp.path()).size(), 1u);  // only the hidden temp file
    EXPECT_FALSE(PathExists(path));
  }  // destroyed without Commit
  EXPECT_TRUE(ListDir(tmp.path()).empty());
  ASSERT_TRUE(WriteFileAtomic(path, Bytes("whole")).ok());
  EXPECT_EQ(ReadAll(path), Bytes("whole"));
  // A failing fill leaves the old file intact and no temp file.
  auto s = WriteFileAtomic(path, [](Sink& sink) {
    EXPECT_TRUE(sink.Write(Bytes("new")).ok());
    return absl::InternalError("fill failed");
  });
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(ReadAll(path), Bytes("whole"));
  EXPECT_EQ(ListDir(tmp.path()), std::vector<std::string>{"out.bin"});
  EXPECT_EQ(WriteFileAtomic(tmp / "no/such/dir/x", Bytes("x")).code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(WriteFileAtomic(tmp.path(), Bytes("x")).ok());  // a directory
}

TEST(KvIoTest, FormatsByPathAndDtypeChecks) {
  TempDir tmp;
  EXPECT_EQ(OutputFormat("x.npz"), CacheFormat::kNpz);
  EXPECT_EQ(OutputFormat("x.NPY"), CacheFormat::kNpy);
  EXPECT_EQ(OutputFormat("out"), CacheFormat::kDumpDir);
  EXPECT_EQ(InputFormat(tmp / "nothing").status().code(), absl::StatusCode::kNotFound);
  kvcomp::testing::WriteAll(tmp / "x.txt", Bytes("x"));
  EXPECT_EQ(InputFormat(tmp / "x.txt").status().code(), absl::StatusCode::kInvalidArgument);
  const KvCache cache = MakeCache(DType::kFP32, 1, 2, 3, 4, 1);
  ASSERT_TRUE(WriteKvCache(tmp / "c.npz", cache).ok());
  ReadOptions fp16;
  fp16.dtype = DType::kFP16;
  auto r = ReadKvCache(tmp / "c.npz", fp16);
  EXPECT_NE(r.status().message().find("not the FP16"), absl::string_view::npos) << r.status();
  EXPECT_NE(WriteKvCache(tmp / "two.npy", cache).message().find("exactly one"),
            absl::string_view::npos);
  EXPECT_EQ(WriteKvCache(tmp / "c.npz", cache).code(), absl::StatusCode::kAlreadyExists);
}

}  // namespace
}  // namespace kvcomp::io

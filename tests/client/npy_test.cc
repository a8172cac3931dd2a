// .npy reader and writer: files numpy really wrote, every truncation point, bad headers.
#include "client/io/npy.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/io/npz.h"
#include "client/io/sha256.h"
#include "gtest/gtest.h"
#include "tests/client/test_util.h"

namespace kvcomp::io {
namespace {

using kvcomp::testing::Bytes;
using kvcomp::testing::ReadAll;
using kvcomp::testing::RunPython;
using kvcomp::testing::TempDir;

// A valid .npy image with a given header dictionary and data.
std::vector<uint8_t> Npy(absl::string_view dict, size_t data_bytes, int major = 1) {
  std::vector<uint8_t> out = {0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<uint8_t>(major), 0};
  const size_t len = dict.size();
  out.push_back(len & 0xFF);
  out.push_back((len >> 8) & 0xFF);
  if (major >= 2) {
    out.push_back(0);
    out.push_back(0);
  }
  out.insert(out.end(), dict.begin(), dict.end());
  out.resize(out.size() + data_bytes, 0x3C);
  return out;
}

TEST(NpyTest, ReadsEveryVersionAndDtypeNumpyWrote) {
  TempDir dir;
  RunPython(absl::StrCat(R"(
import numpy as np
rng = np.random.default_rng(7)
d = ")",
                         dir.path(), R"("
for v in [(1,0),(2,0),(3,0)]:
    for dt in ['<f2','<f4']:
        for shape in [(4,7,8),(5,),(2,3,4,5),(3,0,2)]:
            a = (rng.standard_normal(shape) * 3).astype(dt)
            name = "%s/v%d_%s_%s" % (d, v[0], dt[1:], "x".join(map(str, shape)))
            with open(name + ".npy", "wb") as f:
                np.lib.format.write_array(f, a, version=v)
            open(name + ".raw", "wb").write(a.tobytes())
)"));
  int checked = 0;
  for (const std::string& name : kvcomp::testing::ListDir(dir.path())) {
    if (name.size() < 4 || name.substr(name.size() - 4) != ".npy") continue;
    const std::string stem = dir / name.substr(0, name.size() - 4);
    auto t = ParseNpy(ReadAll(stem + ".npy"), {}, name);
    ASSERT_TRUE(t.ok()) << name << ": " << t.status();
    EXPECT_EQ(t->bytes, ReadAll(stem + ".raw")) << name;
    EXPECT_EQ(t->meta.dtype, name.find("f2") != std::string::npos ? DType::kFP16 : DType::kFP32);
    ++checked;
  }
  EXPECT_EQ(checked, 24);
}

TEST(NpyTest, NumpyLoadsWhatWeWriteAndItMatchesNpSave) {
  TempDir dir;
  int i = 0;
  for (DType dtype : {DType::kFP16, DType::kFP32}) {
    for (std::vector<int64_t> shape :
         std::vector<std::vector<int64_t>>{{4, 9, 8}, {7}, {2, 3, 4, 5}, {123456789012, 0, 2}}) {
      Tensor t;
      t.meta.dtype = dtype;
      t.meta.shape = shape;
      t.bytes.resize(t.meta.NumBytes());
      for (size_t b = 0; b < t.bytes.size(); ++b) t.bytes[b] = static_cast<uint8_t>(b * 37 + 11);
      const std::vector<uint8_t> image = EncodeNpy(t);
      EXPECT_EQ(EncodeNpyHeader(t.meta).size() % 64, 0u);
      const std::string path = dir / absl::StrCat("ours", i++, ".npy");
      kvcomp::testing::WriteAll(path, image);
      // numpy parses it to the same dtype, shape and bytes, and np.save writes the same file.
      RunPython(absl::StrCat(R"(
import numpy as np, io, sys
p = ")",
                             path, R"("
a = np.load(p)
assert a.dtype == np.dtype(")",
                             NpyDescr(dtype), R"("), a.dtype
assert list(a.shape) == [)",
                             absl::StrJoin(shape, ","), R"(], a.shape
b = io.BytesIO(); np.save(b, a)
ours = open(p, "rb").read()
assert b.getvalue() == ours, (b.getvalue()[:128], ours[:128])
)"));
      auto back = ParseNpy(image, {}, "ours");
      ASSERT_TRUE(back.ok()) << back.status();
      EXPECT_EQ(back->bytes, t.bytes);
      EXPECT_EQ(back->meta.shape, shape);
    }
  }
}

TEST(NpyTest, EveryTruncationIsAnErrorAndTrailingBytesToo) {
  Tensor t;
  t.meta.dtype = DType::kFP16;
  t.meta.shape = {2, 3, 4};
  t.bytes.assign(48, 0x11);
  const std::vector<uint8_t> image = EncodeNpy(t);
  ASSERT_TRUE(ParseNpy(image, {}, "full").ok());
  for (size_t n = 0; n < image.size(); ++n) {
    auto r = ParseNpy(absl::MakeConstSpan(image.data(), n), {}, "cut");
    ASSERT_FALSE(r.ok()) << "prefix of " << n << " bytes parsed";
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  }
  auto cut = ParseNpy(absl::MakeConstSpan(image.data(), image.size() - 1), {}, "cut");
  EXPECT_NE(cut.status().message().find("needs 48 data bytes, found 47"), absl::string_view::npos)
      << cut.status();
  std::vector<uint8_t> longer = image;
  longer.push_back(0);
  auto extra = ParseNpy(longer, {}, "long");
  ASSERT_FALSE(extra.ok());
  EXPECT_NE(extra.status().message().find("trailing"), absl::string_view::npos);
}

TEST(NpyTest, BadHeadersAreClearErrors) {
  const std::string ok = "{'descr': '<f2', 'fortran_order': False, 'shape': (2, 3), }";
  ASSERT_TRUE(ParseNpy(Npy(ok, 12), {}, "ok").ok());
  struct Case {
    std::vector<uint8_t> image;
    const char* expect;
  };
  std::vector<Case> cases = {
      {Bytes("PK\x03\x04 not npy at all"), "magic"},
      {[&] {
         auto v = Npy(ok, 12);
         v[6] = 4;
         return v;
       }(),
       "version 4.0"},
      {[&] {
         auto v = Npy(ok, 12);
         v[8] = 0xFF;
         v[9] = 0xFF;
         return v;
       }(),
       "truncated"},
      {Npy("{'descr': '<f2', 'fortran_order': False, }", 12), "needs the keys"},
      {Npy("{'descr': '<f2', 'fortran_order': False, 'shape': (2, 3), 'x': 1}", 12),
       "unexpected key"},
      {Npy("{'descr': '<f2', 'descr': '<f2', 'fortran_order': False, 'shape': (2,3)}", 12),
       "duplicate"},
      {Npy("{'descr': '<f2', 'fortran_order': Maybe, 'shape': (2, 3), }", 12), "True or False"},
      {Npy("{'descr': '<f2', 'fortran_order': False, 'shape': [2, 3], }", 12), "tuple"},
      {Npy("{'descr': '<f2', 'fortran_order': False, 'shape': (2, -3), }", 12), "non-negative"},
      {Npy("{'descr': '<f2', 'fortran_order': False, 'shape': (2, 3), ", 12), "expected"},
      {Npy("{'descr': '<f2, 'fortran_order': False, 'shape': (2, 3), }", 12), "expected"},
      {Npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", 48), "unsupported dtype"},
      {Npy("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", 24), "big-endian"},
      {Npy("{'descr': '<u2', 'fortran_order': False, 'shape': (2, 3), }", 12), "sidecar"},
      {Npy("{'descr': '<f2', 'fortran_order': True, 'shape': (2, 3), }", 12), "Fortran"},
      {Npy("{'descr': '<f2', 'fortran_order': False, 'shape': (), }", 2), "rank 0"},
      {Npy("{'descr': '<f2', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }", 2),
       "more than 8"},
      {Npy("{'descr': '<f2', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", 12),
       "too many elements"},
      {Npy("{'descr': '<f2', 'fortran_order': False, 'shape': (99999999999999999999, 1), }", 12),
       "absurdly large"},
      {Npy("{'descr': '<f2', 'fortran_order': False, 'shape': (1000000, 1000000), }", 12),
       "needs 2000000000000 data bytes, found 12"},
      {Npy("{'descr': '<f2', 'fortran_order': False, 'shape': (2, 3), }\x01", 12), "control"},
  };
  for (const Case& c : cases) {
    auto r = ParseNpy(c.image, {}, "case");
    ASSERT_FALSE(r.ok()) << c.expect;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << c.expect;
    EXPECT_NE(r.status().message().find(c.expect), absl::string_view::npos)
        << "want '" << c.expect << "' in: " << r.status();
  }
}

TEST(NpyTest, Uint16IsBf16OnlyWithTheSidecar) {
  TempDir dir;
  const std::string path = dir / "layer2_v.npy";
  RunPython(absl::StrCat("import numpy as np\nnp.save('", path,
                         "', np.arange(24, dtype='<u2').reshape(2,3,4) + 0x3f00)"));
  auto no_sidecar = ReadNpyFile(path);
  ASSERT_FALSE(no_sidecar.ok());
  EXPECT_NE(no_sidecar.status().message().find("sidecar"), absl::string_view::npos);
  kvcomp::testing::WriteAll(
      path + ".kvcomp.json",
      Bytes(R"({"kvcomp_sidecar": 1, "tensors": {"layer2_v": {"dtype": "BF16"}}})"));
  auto cache = ReadNpyFile(path);
  ASSERT_TRUE(cache.ok()) << cache.status();
  ASSERT_EQ(cache->size(), 1u);
  const NamedTensor& t = (*cache)[0];
  EXPECT_EQ(t.name, "layer2_v");
  EXPECT_EQ(t.tensor.meta.dtype, DType::kBF16);
  EXPECT_EQ(t.tensor.meta.layer, 2);
  EXPECT_EQ(t.tensor.meta.kind, Kind::kValue);
  EXPECT_EQ(t.tensor.bytes[0], 0x00);
  EXPECT_EQ(t.tensor.bytes[1], 0x3f);

  // Writing a BF16 tensor back produces the '<u2' file and its sidecar.
  const std::string out = dir / "copy.npy";
  ASSERT_TRUE(WriteNpyFile(out, *cache).ok());
  auto again = ReadNpyFile(out);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ((*again)[0].tensor.meta.dtype, DType::kBF16);
  EXPECT_EQ((*again)[0].tensor.bytes, t.tensor.bytes);
  RunPython(absl::StrCat("import numpy as np\na = np.load('", out,
                         "')\nassert a.dtype == np.uint16 and a[0,0,0] == 0x3f00"));
}

}  // namespace
}  // namespace kvcomp::io

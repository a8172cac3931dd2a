// safetensors reader and writer. No safetensors implementation is packaged in Debian 12
// (`apt-cache search safetensors` finds nothing, and python3 has no safetensors module), so
// the third-party files here are built by Python's json and struct modules, byte for byte as
// the format's specification lays them out, including what the reference writer adds
// (__metadata__, space padding to 8 bytes, tensors stored in a different order than the
// header lists them).
#include "client/io/safetensors.h"

#include <string>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "client/io/kv_io.h"
#include "gtest/gtest.h"
#include "tests/client/test_util.h"

namespace kvcomp::io {
namespace {

using kvcomp::testing::MakeCache;
using kvcomp::testing::ReadAll;
using kvcomp::testing::RunPython;
using kvcomp::testing::TempDir;

// A safetensors image from a header text and a data buffer.
std::vector<uint8_t> Image(const std::string& header, size_t data_bytes, uint8_t fill = 0x3C) {
  std::vector<uint8_t> out;
  out.reserve(8 + header.size() + data_bytes);
  for (int i = 0; i < 8; ++i)
    out.push_back(static_cast<uint8_t>(uint64_t{header.size()} >> (8 * i)));
  for (char ch : header) out.push_back(static_cast<uint8_t>(ch));
  out.resize(out.size() + data_bytes, fill);
  return out;
}

std::string Error(const std::vector<uint8_t>& bytes) {
  auto c = ParseSafetensors(bytes, "x.safetensors");
  EXPECT_FALSE(c.ok());
  if (c.ok()) return "";
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << c.status();
  return std::string(c.status().message());
}

TEST(SafetensorsTest, RoundTripsEveryDtypeAndLayout) {
  for (DType dtype : {DType::kFP16, DType::kFP32, DType::kBF16}) {
    KvCache cache = MakeCache(dtype, 2, 2, 5, 8, 11);
    cache[1].tensor.meta.layout = Layout::kTokenMajor;
    VectorSink sink;
    ASSERT_TRUE(EncodeSafetensors(cache, sink).ok());
    auto back = ParseSafetensors(sink.bytes, "mem");
    ASSERT_TRUE(back.ok()) << back.status();
    ASSERT_EQ(back->size(), cache.size());
    for (size_t i = 0; i < cache.size(); ++i) {
      EXPECT_EQ((*back)[i].name, cache[i].name);
      EXPECT_EQ((*back)[i].tensor.bytes, cache[i].tensor.bytes);
      EXPECT_EQ((*back)[i].tensor.meta.dtype, dtype);
      EXPECT_EQ((*back)[i].tensor.meta.shape, cache[i].tensor.meta.shape);
      EXPECT_EQ((*back)[i].tensor.meta.layout, cache[i].tensor.meta.layout);
      EXPECT_EQ((*back)[i].tensor.meta.layer, cache[i].tensor.meta.layer);
      EXPECT_EQ((*back)[i].tensor.meta.kind, cache[i].tensor.meta.kind);
    }
    // The header length is a multiple of 8, as the reference writer pads it.
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | sink.bytes[i];
    EXPECT_EQ(n % 8, 0u);
  }
}

TEST(SafetensorsTest, ReadsAFileBuiltToTheSpecByPython) {
  TempDir dir;
  const std::string path = dir / "py.safetensors";
  // Tensors stored V before K (offsets decide, not header order), an I64 tensor of token ids
  // that is skipped, BF16 bits, and __metadata__.
  RunPython(absl::StrCat(R"(
import json, struct, numpy as np
rng = np.random.default_rng(3)
k = rng.standard_normal((2, 4, 8)).astype('<f2')
v = rng.standard_normal((2, 4, 8)).astype('<f2')
ids = np.arange(4, dtype='<i8')
b = (rng.standard_normal((1, 3, 4)).astype('<f4').view('<u4') >> 16).astype('<u2')
bufs = [("layer0_v", "F16", v), ("ids", "I64", ids), ("layer0_k", "F16", k), ("layer1_k", "BF16", b)]
header, data, off = {}, b"", 0
for name, dt, a in bufs:
    raw = a.tobytes()
    header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
    data += raw; off += len(raw)
header = dict(sorted(header.items()))
header["__metadata__"] = {"format": "pt"}
h = json.dumps(header, separators=(",", ":")).encode()
h += b" " * ((8 - len(h) % 8) % 8)
open(")",
                         path, R"(", "wb").write(struct.pack("<Q", len(h)) + h + data)
for name, _, a in bufs:
    open(")",
                         dir.path(), R"(/" + name + ".raw", "wb").write(a.tobytes())
)"));
  std::vector<std::string> skipped;
  ReadOptions opts;
  opts.skipped = &skipped;
  auto cache = ReadKvCache(path, opts);
  ASSERT_TRUE(cache.ok()) << cache.status();
  ASSERT_EQ(cache->size(), 3u);
  EXPECT_EQ((*cache)[0].name, "layer0_v");  // buffer order
  EXPECT_EQ((*cache)[1].name, "layer0_k");
  EXPECT_EQ((*cache)[2].name, "layer1_k");
  EXPECT_EQ((*cache)[2].tensor.meta.dtype, DType::kBF16);
  EXPECT_EQ((*cache)[0].tensor.meta.kind, Kind::kValue);
  EXPECT_EQ((*cache)[1].tensor.meta.layer, 0);
  for (const NamedTensor& t : *cache) {
    EXPECT_EQ(t.tensor.bytes, ReadAll(dir / (t.name + ".raw"))) << t.name;
  }
  EXPECT_EQ(skipped, std::vector<std::string>{"ids (I64)"});
}

TEST(SafetensorsTest, PythonReadsWhatWeWrite) {
  TempDir dir;
  const std::string path = dir / "ours.safetensors";
  KvCache cache = MakeCache(DType::kFP16, 1, 2, 3, 4, 5);
  ASSERT_TRUE(WriteKvCache(path, cache).ok());
  ASSERT_TRUE(WriteKvCache(dir / "ref.npz", cache).ok());
  // Parsed per the spec with json/struct, compared against the same arrays via the .npz.
  RunPython(absl::StrCat(R"(
import json, struct, numpy as np
raw = open(")",
                         path, R"(", "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
h = json.loads(raw[8:8 + n]); data = raw[8 + n:]
ref = np.load(")",
                         dir.path(), R"(/ref.npz")
assert sorted(h) == sorted(ref.files), (h.keys(), ref.files)
end = 0
for name, e in h.items():
    assert e["dtype"] == "F16"
    b, e2 = e["data_offsets"]
    a = np.frombuffer(data[b:e2], dtype="<f2").reshape(e["shape"])
    assert a.tobytes() == ref[name].tobytes(), name
    end = max(end, e2)
assert end == len(data)
)"));
}

TEST(SafetensorsTest, EveryTruncationIsAnError) {
  KvCache cache = MakeCache(DType::kFP16, 1, 1, 2, 4, 1);
  VectorSink sink;
  ASSERT_TRUE(EncodeSafetensors(cache, sink).ok());
  for (size_t n = 0; n < sink.bytes.size(); ++n) {
    std::vector<uint8_t> cut(sink.bytes.begin(), sink.bytes.begin() + n);
    EXPECT_FALSE(ParseSafetensors(cut, "cut").ok()) << "prefix of " << n;
  }
  std::vector<uint8_t> longer = sink.bytes;
  longer.push_back(0);
  EXPECT_NE(Error(longer).find("trailing"), std::string::npos);
}

TEST(SafetensorsTest, BadHeadersAreClearErrors) {
  const std::string ok = R"({"layer0_k":{"dtype":"F16","shape":[1,2,4],"data_offsets":[0,16]}})";
  ASSERT_TRUE(ParseSafetensors(Image(ok, 16), "ok").ok());
  struct Case {
    std::string header;
    size_t data;
    std::string expect;
  };
  const Case cases[] = {
      {"[1,2]", 0, "does not start with '{'"},
      {"{\"a\":", 0, "not valid JSON"},
      {R"({"layer0_k":{"dtype":"F16","shape":[1,2,4]}})", 16,
       "needs dtype, shape and data_offsets"},
      {R"({"layer0_k":{"dtype":"F16","shape":[1,2,4],"data_offsets":[0,14]}})", 14,
       "shape x itemsize is 16"},
      {R"({"layer0_k":{"dtype":"F16","shape":[1,-2,4],"data_offsets":[0,16]}})", 16,
       "non-negative-integer"},
      {R"({"layer0_k":{"dtype":"F16","shape":[1,2,4],"data_offsets":[16,0]}})", 16,
       "end before begin"},
      {R"({"layer0_k":{"dtype":"F16","shape":[1,2,4],"data_offsets":[0,16]}})", 8, "truncated"},
      {R"({"layer0_k":{"dtype":"F16","shape":[1,2,4],"data_offsets":[8,24]}})", 24, "(gap)"},
      {R"({"layer0_k":{"dtype":"F16","shape":[1,2,4],"data_offsets":[0,16]},)"
       R"("layer0_v":{"dtype":"F16","shape":[1,2,4],"data_offsets":[8,24]}})",
       24, "(overlap)"},
      {R"({"layer0_k":{"dtype":"Q4","shape":[1,2,4],"data_offsets":[0,16]}})", 16,
       "unknown dtype 'Q4'"},
      {R"({"layer0_k":{"dtype":"I16","shape":[1,2,4],"data_offsets":[0,16]}})", 16,
       "a KV tensor must be F16, F32 or BF16"},
      {R"({"layer0_k":{"dtype":"F16","shape":[1,2,4],"data_offsets":[0,16]},"__metadata__":[]})",
       16, "__metadata__ is not an object"},
      {R"({"layer0_k":{"dtype":"F16","shape":[1,2,4],"data_offsets":[0,16]},)"
       R"("__metadata__":{"kvcomp.layout.layer0_k":"diagonal"}})",
       16, "unknown layout"},
      {R"({"layer0_k":{"dtype":"F16","shape":[1099511627777,1099511627777],"data_offsets":[0,16]}})",
       16, "absurd shape"},
  };
  for (const Case& c : cases) {
    EXPECT_NE(Error(Image(c.header, c.data)).find(c.expect), std::string::npos) << c.header;
  }
  // A header length above the 100 MB limit, and one past the end of the file.
  std::vector<uint8_t> huge = Image(ok, 16);
  huge[4] = 0x10;
  EXPECT_NE(Error(huge).find("above the limit"), std::string::npos);
  std::vector<uint8_t> past = Image(ok, 0);
  past[0] = static_cast<uint8_t>(ok.size() + 1);
  EXPECT_NE(Error(past).find("truncated"), std::string::npos);
}

TEST(SafetensorsTest, WriterRefusesRepeatedOrReservedNames) {
  KvCache cache = MakeCache(DType::kFP16, 1, 1, 2, 4, 1);
  cache[1].name = cache[0].name;
  VectorSink sink;
  EXPECT_FALSE(EncodeSafetensors(cache, sink).ok());
  cache[1].name = "__metadata__";
  EXPECT_FALSE(EncodeSafetensors(cache, sink).ok());
}

}  // namespace
}  // namespace kvcomp::io

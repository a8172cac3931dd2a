// llama.cpp sequence-state files: the real files llama.cpp wrote (tests/data/llama_state), read
// into tensors and a skeleton and written back byte for byte; and every kind of bad file
// refused with the field and its byte offset.
#include "client/io/llama_state.h"

#include <cstring>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "client/io/file_util.h"
#include "client/io/kv_io.h"
#include "client/io/kvc_side.h"
#include "gtest/gtest.h"
#include "tests/client/test_util.h"

namespace kvcomp::io {
namespace {

using kvcomp::testing::ReadAll;
using kvcomp::testing::TempDir;
using kvcomp::testing::WriteAll;

struct Fixture {
  std::string file;
  std::string path;
  std::string k_type, v_type;
  uint32_t v_trans = 0;
  uint32_t cells = 0;
  uint64_t bytes = 0;
};

std::vector<Fixture> Fixtures() {
  const std::string dir = KVCOMP_LLAMA_STATE_DIR;
  std::ifstream in(dir + "/manifest.json");
  const nlohmann::json m = nlohmann::json::parse(in);
  std::vector<Fixture> out;
  for (const auto& f : m["files"]) {
    out.push_back({f["file"], dir + "/" + f["file"].get<std::string>(), f["kType"], f["vType"],
                   f["vTrans"], f["cells"], f["bytes"]});
  }
  return out;
}

const Fixture& FixtureNamed(const std::string& file) {
  static const std::vector<Fixture> all = Fixtures();
  for (const Fixture& f : all) {
    if (f.file == file) return f;
  }
  ADD_FAILURE() << "no fixture " << file;
  return all[0];
}

DType DTypeOfName(const std::string& ggml) {
  if (ggml == "F32") return DType::kFP32;
  if (ggml == "BF16") return DType::kBF16;
  if (ggml == "Q8_0") return DType::kQ8_0;
  if (ggml == "Q4_0") return DType::kQ4_0;
  return DType::kFP16;
}

std::vector<uint8_t> Assemble(absl::Span<const uint8_t> skeleton, const KvCache& tensors,
                              absl::Status* status) {
  VectorSink sink;
  *status = AssembleLlamaState(skeleton, tensors, sink);
  return sink.bytes;
}

TEST(LlamaStateTest, EveryFileLlamaCppWroteReadsAndWritesBackByteIdentical) {
  const std::vector<Fixture> fixtures = Fixtures();
  ASSERT_GE(fixtures.size(), 13u);
  for (const Fixture& f : fixtures) {
    SCOPED_TRACE(f.file);
    const std::vector<uint8_t> bytes = ReadAll(f.path);
    ASSERT_EQ(bytes.size(), f.bytes);
    auto state = ParseLlamaState(bytes, f.file);
    ASSERT_TRUE(state.ok()) << state.status();
    const LlamaStateSummary& s = state->summary;
    EXPECT_EQ(s.cells, f.cells);
    EXPECT_EQ(s.tokens, f.cells);  // the fixtures cache every token they were given
    EXPECT_EQ(s.file_bytes, bytes.size());
    EXPECT_EQ(s.skeleton_bytes, state->skeleton.size());
    if (f.cells == 0) {
      EXPECT_TRUE(state->tensors.empty());
      EXPECT_EQ(state->skeleton, bytes);
    } else {
      EXPECT_EQ(s.v_trans, f.v_trans);
      ASSERT_EQ(s.layers, 5u);  // stories260K
      ASSERT_EQ(state->tensors.size(), 10u);
      // The skeleton: 12 + 4 tokens, n_stream, cell_count, 12 bytes a cell, v_trans, n_layer,
      // and each section's 12-byte header (type + row size, or type + element size + n_embd).
      EXPECT_EQ(s.skeleton_bytes, 12 + 4 * f.cells + 8 + 12 * f.cells + 8 + 10 * 12);
    }
    uint64_t data = 0;
    for (size_t i = 0; i < state->tensors.size(); ++i) {
      const NamedTensor& t = state->tensors[i];
      const TensorMeta& m = t.tensor.meta;
      const bool key = i < 5;
      EXPECT_EQ(t.name, absl::StrCat("layer", i % 5, key ? "_k" : "_v"));
      EXPECT_EQ(m.layer, static_cast<int32_t>(i % 5));
      EXPECT_EQ(m.kind, key ? Kind::kKey : Kind::kValue);
      EXPECT_EQ(m.dtype, DTypeOfName(key ? f.k_type : f.v_type));
      EXPECT_EQ(m.layout, Layout::kTokenMajor);
      // stories260K: 4 KV heads x head_dim 8; the pad32 twin 4 x 32 (4 blocks of 32 a row).
      const int64_t row = IsBlockQuantized(m.dtype) ? 4 : (f.file.rfind("q", 0) == 0 ? 128 : 32);
      EXPECT_EQ(m.shape, (std::vector<int64_t>{f.cells, row}));
      EXPECT_EQ(t.tensor.bytes.size(), m.NumBytes());
      data += m.NumBytes();
    }
    EXPECT_EQ(data + s.skeleton_bytes, bytes.size());
    absl::Status st;
    EXPECT_EQ(Assemble(state->skeleton, state->tensors, &st), bytes);
    EXPECT_TRUE(st.ok()) << st;
    auto summary = SummarizeLlamaSkeleton(state->skeleton);
    ASSERT_TRUE(summary.ok()) << summary.status();
    EXPECT_EQ(summary->ToString(), s.ToString());
  }
}

// K and V are computed before attention, so layer 0's (from the token embeddings alone) are
// the same with flash attention on or off; only the storage differs (V transposed when off).
// Reading both files must give the same tensors: the transposition is undone exactly.
TEST(LlamaStateTest, TransposedVReadsAsTheSameTensorAsUntransposed) {
  auto trans = ReadLlamaStateFile(FixtureNamed("f16-vtrans1.state").path);
  auto plain = ReadLlamaStateFile(FixtureNamed("f16-vtrans0.state").path);
  ASSERT_TRUE(trans.ok() && plain.ok());
  ASSERT_EQ(trans->summary.v_trans, 1u);
  ASSERT_EQ(plain->summary.v_trans, 0u);
  const NamedTensor& a = trans->tensors[5];
  const NamedTensor& b = plain->tensors[5];
  ASSERT_EQ(a.name, "layer0_v");
  EXPECT_EQ(a.tensor.meta.shape, b.tensor.meta.shape);
  EXPECT_TRUE(a.tensor.bytes == b.tensor.bytes);
  EXPECT_TRUE(trans->tensors[0].tensor.bytes == plain->tensors[0].tensor.bytes);  // layer0_k
  // And the file's own order: in the transposed file, channel j of cell c is element
  // j * cells + c of the section.
  const std::vector<uint8_t> file = ReadAll(FixtureNamed("f16-vtrans1.state").path);
  const uint64_t cells = trans->summary.cells;
  // Header, cells, v_trans and n_layer, 5 K sections, then V0's 12-byte header.
  const uint64_t v0 = 12 + 4 * cells + 8 + 12 * cells + 8 + 5 * (12 + cells * 32 * 2) + 12;
  for (uint64_t c = 0; c < cells; c += 7) {
    for (uint64_t j = 0; j < 32; j += 5) {
      EXPECT_EQ(std::memcmp(&file[v0 + (j * cells + c) * 2], &a.tensor.bytes[(c * 32 + j) * 2], 2),
                0)
          << c << "," << j;
    }
  }
}

TEST(LlamaStateTest, ReadKvCacheFindsAStateByItsMagicWhateverItsName) {
  TempDir tmp;
  const std::string path = tmp / "slot-1.bin";
  WriteAll(path, ReadAll(FixtureNamed("q8_0-vtrans0.state").path));
  auto format = InputFormat(path);
  ASSERT_TRUE(format.ok()) << format.status();
  EXPECT_EQ(*format, CacheFormat::kLlamaState);
  std::optional<SideRecord> side;
  ReadOptions read;
  read.side = &side;
  auto cache = ReadKvCache(path, read);
  ASSERT_TRUE(cache.ok()) << cache.status();
  ASSERT_TRUE(side.has_value());
  EXPECT_EQ(cache->size(), 10u);
  // Written back through WriteKvCache: the state file again, unless .npz etc. is asked for.
  WriteOptions write;
  write.side = &*side;
  ASSERT_TRUE(WriteKvCache(tmp / "back", *cache, write).ok());
  EXPECT_EQ(ReadAll(tmp / "back"), ReadAll(path));
  absl::Status npz = WriteKvCache(tmp / "back.npz", *cache, write);
  EXPECT_EQ(npz.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(npz.message().find("Q8_0"), std::string::npos) << npz;
  EXPECT_FALSE(PathExists(tmp / "back.npz"));
  // An F16 state's tensors do go to .npz (token-major, no skeleton).
  auto f16 = ReadKvCache(FixtureNamed("f16-vtrans1.state").path, read);
  ASSERT_TRUE(f16.ok());
  ASSERT_TRUE(WriteKvCache(tmp / "f16.npz", *f16, write).ok());
}

TEST(LlamaStateTest, TensorsThatDoNotFitTheSkeletonAreRefused) {
  auto state = ReadLlamaStateFile(FixtureNamed("f16-vtrans1.state").path);
  ASSERT_TRUE(state.ok());
  absl::Status st;
  KvCache missing(state->tensors.begin(), state->tensors.end() - 1);
  Assemble(state->skeleton, missing, &st);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("layer4_v"), std::string::npos) << st;
  KvCache wrong_type = state->tensors;
  wrong_type[2].tensor.meta.dtype = DType::kBF16;
  Assemble(state->skeleton, wrong_type, &st);
  EXPECT_NE(st.message().find("'layer2_k' is BF16"), std::string::npos) << st;
  KvCache extra = state->tensors;
  extra.push_back(extra[0]);
  extra.back().tensor.meta.layer = 9;
  Assemble(state->skeleton, extra, &st);
  EXPECT_NE(st.message().find("no place"), std::string::npos) << st;
  KvCache fewer_cells = state->tensors;
  fewer_cells[0].tensor.meta.shape[0] -= 1;
  Assemble(state->skeleton, fewer_cells, &st);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
}

absl::Status ParseStatus(const std::vector<uint8_t>& bytes) {
  return ParseLlamaState(bytes, "bad.state").status();
}

void ExpectRefused(const std::vector<uint8_t>& bytes, absl::string_view field, uint64_t offset) {
  const absl::Status st = ParseStatus(bytes);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_NE(st.message().find(field), std::string::npos) << st;
  EXPECT_NE(st.message().find(absl::StrCat("at byte offset ", offset)), std::string::npos) << st;
}

void PutU32(std::vector<uint8_t>& b, size_t at, uint32_t v) { std::memcpy(&b[at], &v, 4); }

TEST(LlamaStateTest, EveryCutOfTheHeadersAndTheirBoundariesIsRefused) {
  for (const char* name : {"f16-vtrans1.state", "q8_0-vtrans0.state", "bf16k-f32v-vtrans0.state"}) {
    SCOPED_TRACE(name);
    const std::vector<uint8_t> file = ReadAll(FixtureNamed(name).path);
    auto state = ParseLlamaState(file, name);
    ASSERT_TRUE(state.ok());
    // Every byte up to the end of the cells and the first section header, then a stride
    // through the data (whose cuts the last sections' size checks catch).
    const uint64_t cells = state->summary.cells;
    const uint64_t headers = 12 + 4 * state->summary.tokens + 8 + 12 * cells + 8 + 12;
    for (uint64_t n = 0; n < file.size(); n += n < headers ? 1 : 97) {
      std::vector<uint8_t> cut(file.begin(), file.begin() + n);
      const absl::Status st = ParseStatus(cut);
      ASSERT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << "cut at " << n << ": " << st;
      ASSERT_NE(st.message().find("at byte offset"), std::string::npos) << st;
    }
    std::vector<uint8_t> cut(file.begin(), file.end() - 1);
    EXPECT_EQ(ParseStatus(cut).code(), absl::StatusCode::kInvalidArgument);
  }
}

TEST(LlamaStateTest, BadFieldsAreRefusedByNameAndOffset) {
  const std::vector<uint8_t> file = ReadAll(FixtureNamed("f16-vtrans1.state").path);
  const uint32_t n = FixtureNamed("f16-vtrans1.state").cells;
  const size_t cells_at = 12 + 4 * n + 8;  // first cell
  const size_t v_trans_at = cells_at + 12 * n;
  const size_t k0_at = v_trans_at + 8;
  {
    std::vector<uint8_t> b = file;
    b[0] = 'x';
    ExpectRefused(b, "magic", 0);
  }
  {
    std::vector<uint8_t> b = file;
    PutU32(b, 4, 2);
    ExpectRefused(b, "version", 4);
  }
  {
    std::vector<uint8_t> b = file;
    PutU32(b, 8, 1u << 30);
    ExpectRefused(b, "n_token_count", 8);
  }
  {
    std::vector<uint8_t> b = file;
    PutU32(b, v_trans_at, 2);
    ExpectRefused(b, "v_trans", v_trans_at);
  }
  {
    std::vector<uint8_t> b = file;
    PutU32(b, k0_at, 3);  // Q4_1
    ExpectRefused(b, "K type of layer 0", k0_at);
    EXPECT_NE(ParseStatus(b).message().find("Q4_1"), std::string::npos);
  }
  {
    std::vector<uint8_t> b = file;
    PutU32(b, k0_at + 4, 63);  // a row of 63 bytes is not whole F16 elements
    ExpectRefused(b, "K row size of layer 0", k0_at + 4);
  }
  {
    std::vector<uint8_t> b = file;
    PutU32(b, cells_at + 4, 1000);  // cell 0's n_seq_id
    ExpectRefused(b, "n_seq_id", cells_at + 4);
  }
  {
    std::vector<uint8_t> b = file;
    b.push_back(0);
    ExpectRefused(b, "end of the cache", file.size());
  }
  {
    // A second stream holding cells too (a whole-context state of a multi-sequence context).
    std::vector<uint8_t> b(file.begin(), file.begin() + 12 + 4 * n);
    const std::vector<uint8_t> streams = {2, 0, 0, 0};
    b.insert(b.end(), streams.begin(), streams.end());
    b.insert(b.end(), file.begin() + 12 + 4 * n + 4, file.end());
    const size_t second = b.size();
    b.insert(b.end(), file.begin() + 12 + 4 * n + 4, file.end());
    ExpectRefused(b, "cell_count", second);
  }
}

// A model with per-cell extras (M-RoPE's 2D positions and token, 12 bytes after n_seq_id, as
// llama.cpp's state_write_meta writes them) shifts every later field: refused, never misread.
TEST(LlamaStateTest, PerCellExtrasAreRefused) {
  const std::vector<uint8_t> file = ReadAll(FixtureNamed("f16-vtrans1.state").path);
  const uint32_t n = FixtureNamed("f16-vtrans1.state").cells;
  std::vector<uint8_t> b(file.begin(), file.begin() + 12 + 4 * n + 8);
  for (uint32_t c = 0; c < n; ++c) {
    const size_t at = 12 + 4 * n + 8 + 12 * c;
    b.insert(b.end(), file.begin() + at, file.begin() + at + 8);  // pos, n_seq_id
    const int32_t ext[3] = {static_cast<int32_t>(c), 0, -1};
    const uint8_t* p = reinterpret_cast<const uint8_t*>(ext);
    b.insert(b.end(), p, p + 12);
    b.insert(b.end(), file.begin() + at + 8, file.begin() + at + 12);  // seq_id
  }
  b.insert(b.end(), file.begin() + 12 + 4 * n + 8 + 12 * n, file.end());
  const absl::Status st = ParseStatus(b);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("per-cell extras"), std::string::npos) << st;
}

TEST(LlamaStateTest, QuantisedTypesWithVTransAreRefused) {
  // q8_0k-f16v-vtrans1: its V sections are transposed F16; make layer 0's V claim Q8_0.
  const Fixture& f = FixtureNamed("q8_0k-f16v-vtrans1.state");
  std::vector<uint8_t> b = ReadAll(f.path);
  auto state = ParseLlamaState(b, f.file);
  ASSERT_TRUE(state.ok());
  const size_t v0 = 12 + 4 * f.cells + 8 + 12 * f.cells + 8 + 5 * (12 + f.cells * 136);
  uint32_t type;
  std::memcpy(&type, &b[v0], 4);
  ASSERT_EQ(type, 1u);  // F16
  PutU32(b, v0, 8);
  ExpectRefused(b, "V element size of layer 0", v0 + 4);
  PutU32(b, v0, 0);  // F32, but the element size says 2
  ExpectRefused(b, "V element size of layer 0", v0 + 4);
}

TEST(SideRecordTest, RoundTripsAndRefusesDamage) {
  const std::vector<uint8_t> skeleton = ReadAll(FixtureNamed("f32-vtrans0.state").path);
  const std::vector<uint8_t> rec = EncodeSideRecord({SideSource::kLlamaState, skeleton});
  EXPECT_LT(rec.size(), skeleton.size());  // zstd'd
  std::vector<uint8_t> file = rec;
  file.insert(file.end(), {'K', 'V', 'C', 'F'});
  auto side = ReadSideRecord(file);
  ASSERT_TRUE(side.ok()) << side.status();
  ASSERT_TRUE(side->record.has_value());
  EXPECT_EQ(side->record->bytes, skeleton);
  EXPECT_EQ(side->record_bytes, rec.size());
  // Incompressible bytes are stored.
  std::vector<uint8_t> noise(300);
  uint32_t x = 1;
  for (uint8_t& v : noise) v = static_cast<uint8_t>((x = x * 1664525u + 1013904223u) >> 24);
  auto stored = ReadSideRecord(EncodeSideRecord({SideSource::kLlamaState, noise}));
  ASSERT_TRUE(stored.ok() && stored->record);
  EXPECT_EQ(stored->record->bytes, noise);
  // No magic: no record.
  auto none = ReadSideRecord(std::vector<uint8_t>{'K', 'V', 'C', 'F', 1});
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->record.has_value());
  for (size_t i = 4; i < rec.size(); i += 3) {
    std::vector<uint8_t> bad = rec;
    bad[i] ^= 0x10;
    auto got = ReadSideRecord(bad);
    EXPECT_FALSE(got.ok()) << "flipped byte " << i;
  }
  for (size_t n = 4; n < rec.size(); ++n) {
    auto got = ReadSideRecord(absl::MakeConstSpan(rec).first(n));
    EXPECT_FALSE(got.ok()) << "cut at " << n;
  }
}

}  // namespace
}  // namespace kvcomp::io

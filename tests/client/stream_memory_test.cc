// Streaming memory with the defaults a user gets (issue 27, item 5): `kvcomp compress` and
// `kvcomp decompress`, with no flag but --server, stream a 256 MiB cache through a real
// kvcomp-server with its defaults, and the server's peak RSS (VmHWM) stays under 160 MiB. Before
// issue 27 the same run peaked at 293 MiB: 60 MiB chunks, about five of them held at once.
// Label `long` (seconds of work; an RSS figure means nothing under a sanitizer).
#include <cstdio>
#include <cstring>

#include <gtest/gtest.h>

#include "client/io/kv_io.h"
#include "tests/client/test_util.h"
#include "tests/support/server_process.h"

namespace kvcomp::testing {
namespace {

// 16 layers x K/V of [8 heads, 4096 tokens, 128 dims] FP16: 256 MiB. Values are finite FP16 of
// random sign and mantissa (|x| < 2): zstd barely shrinks them, so frames are as big as the
// tensors, the worst case for what a chunk's answer holds.
io::KvCache NearlyIncompressibleCache() {
  io::KvCache cache;
  uint64_t state = 0x9e3779b97f4a7c15ull;
  for (int layer = 0; layer < 16; ++layer) {
    for (Kind kind : {Kind::kKey, Kind::kValue}) {
      io::NamedTensor t;
      t.name = io::CanonicalTensorName(layer, kind, 0);
      t.tensor.meta.dtype = DType::kFP16;
      t.tensor.meta.kind = kind;
      t.tensor.meta.layer = layer;
      t.tensor.meta.shape = {8, 4096, 128};
      t.tensor.bytes.resize(t.tensor.meta.NumBytes());
      for (size_t i = 0; i < t.tensor.bytes.size(); i += 8) {
        state ^= state << 13, state ^= state >> 7, state ^= state << 17;
        const uint64_t finite = state & 0xBFFFBFFFBFFFBFFFull;  // exponent below 31: no inf/NaN
        std::memcpy(t.tensor.bytes.data() + i, &finite, 8);
      }
      cache.push_back(std::move(t));
    }
  }
  return cache;
}

int64_t PeakMiB(const ServerProcess& server) { return ProcStatusKiB(server.pid(), "VmHWM") / 1024; }

TEST(StreamMemoryTest, CliDefaultsStreamA256MiBCacheUnder160MiBOfServerRss) {
  TempDir dir;
  const io::KvCache cache = NearlyIncompressibleCache();
  ASSERT_TRUE(io::WriteKvCache(dir / "in", cache).ok());

  auto server = ServerProcess::Start({"--log-level", "warn"});
  ASSERT_TRUE(server.ok()) << server.status();
  const int64_t at_start = PeakMiB(**server);
  const std::string cli = KVCOMP_CLI_BINARY;
  ProcessResult r = testing::Run(
      {cli, "compress", dir / "in", "-o", dir / "c.kvc", "--server", (*server)->address(), "-q"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const int64_t after_compress = PeakMiB(**server);
  r = testing::Run({cli, "decompress", dir / "c.kvc", "-o", dir / "back", "--server",
                    (*server)->address(), "-q"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const int64_t after_decompress = PeakMiB(**server);
  std::printf("server VmHWM: %lld MiB at start, %lld after compress, %lld after decompress\n",
              static_cast<long long>(at_start), static_cast<long long>(after_compress),
              static_cast<long long>(after_decompress));

  auto back = io::ReadKvCache(dir / "back");
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->size(), cache.size());
  for (size_t i = 0; i < cache.size(); ++i) {
    EXPECT_TRUE((*back)[i].tensor.bytes == cache[i].tensor.bytes) << cache[i].name;
  }
  EXPECT_LT(after_compress, 160);
  EXPECT_LT(after_decompress, 160);
}

}  // namespace
}  // namespace kvcomp::testing

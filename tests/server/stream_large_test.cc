// A generated Llama-shaped cache of more than 2 GiB (protobuf's hard limit for one message)
// streamed through the real server on loopback: CompressStream and DecompressStream in token
// blocks, bit-exact, with the server's peak RSS (VmHWM) under a bound that depends on the chunk
// size, not on the cache size. Label `long`; `make test` (and so CI) runs it.
#include <chrono>
#include <cstdio>
#include <string>

#include <gtest/gtest.h>

#include "core/kvcomp/synth/llama_synth.h"
#include "tests/server/server_fixture.h"
#include "tests/server/stream_helpers.h"
#include "tests/support/sanitizers.h"

namespace kvcomp::testing {
namespace {

// Peak resident set of `pid` in bytes (VmHWM), or -1.
int64_t PeakRss(pid_t pid) {
  const int64_t kib = ProcStatusKiB(pid, "VmHWM");
  return kib < 0 ? -1 : kib * 1024;
}

v1::Tensor MetaOf(const Tensor& t, const std::string& name) {
  v1::Tensor meta;
  meta.set_name(name);
  meta.set_layer(t.meta.layer);
  meta.set_kind(t.meta.kind == Kind::kKey ? v1::TENSOR_KIND_K : v1::TENSOR_KIND_V);
  meta.set_datatype("FP16");
  meta.set_layout(v1::TENSOR_LAYOUT_HEAD_MAJOR);
  for (int64_t d : t.meta.shape) meta.add_shape(d);
  return meta;
}

TEST(StreamLargeTest, LlamaCacheOver2GiBStreamsBitExactInBoundedMemory) {
  synth::LlamaShape shape;  // Llama-3-8B: 32 layers, 8 KV heads, head_dim 128, FP16
  // 16640 tokens: 32 x 2 x 8 x 128 x 16640 x 2 bytes = 2.03 GiB. Under ASan (make test-asan)
  // the same code runs on a smaller cache; the full size runs in `make test`.
  shape.tokens = kAddressSanitizer ? 1024 : 16640;
  constexpr int64_t kBlockTokens = 2048;  // a block of one tensor: 4 MiB; a chunk (K+V): 8 MiB
  const int64_t raw_expected =
      int64_t{shape.layers} * 2 * shape.kv_heads * shape.head_dim * shape.tokens * 2;
  if (!kAddressSanitizer) {
    ASSERT_GT(raw_expected, int64_t{2} << 30);
  }

  auto server = ServerProcess::Start(
      {"--workers", "2", "--max-message-bytes", std::to_string(64 << 20), "--log-level", "warn"});
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = v1::KVCompressor::NewStub(UnlimitedChannel((*server)->address()));
  const int64_t rss_at_start = PeakRss((*server)->pid());
  ASSERT_GT(rss_at_start, 0);

  grpc::ClientContext compress_context, decompress_context;
  auto compress = stub->CompressStream(&compress_context);
  auto decompress = stub->DecompressStream(&decompress_context);
  int64_t raw_streamed = 0, compressed_streamed = 0, chunks = 0, mismatches = 0;
  double generate_seconds = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int layer = 0; layer < shape.layers; ++layer) {
    const auto generating = std::chrono::steady_clock::now();
    const Tensor k = synth::LlamaKv(shape, layer, Kind::kKey);
    const Tensor v = synth::LlamaKv(shape, layer, Kind::kValue);
    generate_seconds +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - generating).count();
    const v1::Tensor k_meta = MetaOf(k, "layer" + std::to_string(layer) + "_k");
    const v1::Tensor v_meta = MetaOf(v, "layer" + std::to_string(layer) + "_v");
    for (int64_t offset = 0; offset < shape.tokens; offset += kBlockTokens) {
      const int64_t count = std::min<int64_t>(kBlockTokens, shape.tokens - offset);
      v1::CompressRequest chunk;
      chunk.set_codec("zstd(-3)");
      *chunk.add_tensors() = TokenBlockOf(k_meta, k.bytes.data(), offset, count, 2);
      *chunk.add_tensors() = TokenBlockOf(v_meta, v.bytes.data(), offset, count, 2);
      ASSERT_TRUE(compress->Write(chunk)) << "chunk " << chunks;
      v1::CompressResponse frames;
      ASSERT_TRUE(compress->Read(&frames)) << "chunk " << chunks;
      ASSERT_EQ(frames.tensors_size(), 2);
      raw_streamed += static_cast<int64_t>(frames.totals().raw_bytes());
      compressed_streamed += static_cast<int64_t>(frames.totals().compressed_bytes());

      v1::DecompressRequest back_chunk;
      *back_chunk.mutable_tensors() = std::move(*frames.mutable_tensors());
      ASSERT_TRUE(decompress->Write(back_chunk)) << "chunk " << chunks;
      v1::DecompressResponse back;
      ASSERT_TRUE(decompress->Read(&back)) << "chunk " << chunks;
      ASSERT_EQ(back.tensors_size(), 2);
      for (int i = 0; i < 2; ++i) {
        EXPECT_EQ(back.tensors(i).token_offset(), static_cast<uint64_t>(offset));
        if (back.tensors(i).raw_contents() != chunk.tensors(i).raw_contents()) ++mismatches;
      }
      ++chunks;
    }
  }
  ASSERT_TRUE(compress->WritesDone());
  ASSERT_TRUE(decompress->WritesDone());
  grpc::Status s = compress->Finish();
  ASSERT_TRUE(s.ok()) << s.error_code() << ": " << s.error_message();
  s = decompress->Finish();
  ASSERT_TRUE(s.ok()) << s.error_code() << ": " << s.error_message();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  EXPECT_EQ(mismatches, 0);
  EXPECT_EQ(raw_streamed, raw_expected);
  const int64_t peak = PeakRss((*server)->pid());
  std::printf(
      "streamed %.2f GiB raw (%.2f GiB of frames, ratio %.3f) in %lld chunks in %.1f s "
      "(%.1f s generating); server VmHWM %.1f MiB (%.1f MiB at start)\n",
      raw_streamed / 1073741824.0, compressed_streamed / 1073741824.0,
      static_cast<double>(raw_streamed) / static_cast<double>(compressed_streamed),
      static_cast<long long>(chunks), seconds, generate_seconds, peak / 1048576.0,
      rss_at_start / 1048576.0);
  // Two streams, one 8 MiB chunk each in flight, plus frames, codec scratch and gRPC buffers:
  // a few chunk sizes. A server that buffered the stream would need over 2 GiB.
  if (!kAddressSanitizer) {
    EXPECT_LT(peak, int64_t{256} << 20);
  }
}

}  // namespace
}  // namespace kvcomp::testing

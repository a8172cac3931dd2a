// CompressTensors / DecompressTensors (kvcomp/batch.h) and ParallelFor: the same frames whatever
// the threads, token blocks that are each an ordinary frame, errors in input order.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <set>
#include <thread>

#include "core/kvcomp/batch.h"
#include "core/kvcomp/frame.h"
#include "core/kvcomp/synth/llama_synth.h"
#include "core/kvcomp/token_blocks.h"

namespace kvcomp {
namespace {

// A few Llama-shaped tensors of different sizes: head-major K and V, and one token-major.
std::vector<Tensor> Cache() {
  std::vector<Tensor> out;
  synth::LlamaShape shape;
  shape.kv_heads = 2, shape.head_dim = 32;
  for (int layer = 0; layer < 3; ++layer) {
    shape.tokens = 300 + 170 * layer;
    out.push_back(synth::LlamaKv(shape, layer, Kind::kKey));
    out.push_back(synth::LlamaKv(shape, layer, Kind::kValue));
  }
  Tensor token_major = out.back();
  token_major.meta.layout = Layout::kTokenMajor;  // [300+340, 2, 32] read as token-major
  token_major.meta.shape = {token_major.meta.shape[1], 2, 32};
  out.push_back(std::move(token_major));
  return out;
}

std::vector<TensorView> Views(const std::vector<Tensor>& tensors) {
  std::vector<TensorView> views;
  for (const Tensor& t : tensors) views.push_back(t.view());
  return views;
}

// DecompressTensors of `items` for a test that expects it to fail before asking for any room.
absl::StatusOr<std::vector<TensorMeta>> DecompressExpectingNoRoom(
    absl::Span<const absl::Span<const uint8_t>> items, const BatchOptions& options = {}) {
  return DecompressTensors(
      items,
      [](size_t, const TensorMeta&) -> absl::StatusOr<absl::Span<uint8_t>> {
        ADD_FAILURE() << "room was asked for";
        return absl::InternalError("never asked");
      },
      options);
}

// Runs tasks on threads of its own, one per task: a real executor, as a server's pool is.
class ThreadExecutor : public Executor {
 public:
  ~ThreadExecutor() override {
    std::lock_guard<std::mutex> lock(mu_);
    for (std::thread& t : threads_) t.join();
  }
  bool Submit(std::function<void()> task) override {
    std::lock_guard<std::mutex> lock(mu_);
    threads_.emplace_back(std::move(task));
    return true;
  }

 private:
  std::mutex mu_;
  std::vector<std::thread> threads_;
};

// An executor that cannot take work (a pool shutting down): the caller must do it all.
class RefusingExecutor : public Executor {
 public:
  bool Submit(std::function<void()>) override { return false; }
};

TEST(ParallelForTest, RunsEveryIndexOnceWhateverRunsIt) {
  ThreadExecutor threads;
  RefusingExecutor refusing;
  for (Executor* executor : {static_cast<Executor*>(nullptr), static_cast<Executor*>(&threads),
                             static_cast<Executor*>(&refusing)}) {
    for (int n : {0, 1, 2, 7, 1000}) {
      std::vector<std::atomic<int>> runs(static_cast<size_t>(n));
      ParallelFor(static_cast<size_t>(n), {4, executor}, [&](size_t i) { ++runs[i]; });
      for (int i = 0; i < n; ++i) EXPECT_EQ(runs[static_cast<size_t>(i)].load(), 1) << i;
    }
  }
}

// One thread taking tasks in order: a server's pool with one worker.
class QueueExecutor : public Executor {
 public:
  QueueExecutor() : thread_([this] { Loop(); }) {}
  ~QueueExecutor() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  bool Submit(std::function<void()> task) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(std::move(task));
    }
    cv_.notify_all();
    return true;
  }

 private:
  void Loop() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
        if (queue_.empty()) return;
        task = std::move(queue_.front());
        queue_.pop_front();
      }
      task();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stop_ = false;
  std::thread thread_;
};

// A helper takes one item per task and queues itself again, so work queued behind it on the
// executor runs long before the call is done, not after it.
TEST(ParallelForTest, ABigCallSharesTheExecutorWithWorkQueuedBehindIt) {
  QueueExecutor pool;
  constexpr size_t kItems = 40;
  std::atomic<size_t> done{0};
  std::atomic<long> done_when_other_ran{-1};
  std::thread other([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(15));
    pool.Submit([&] { done_when_other_ran = static_cast<long>(done.load()); });
  });
  ParallelFor(kItems, {2, &pool}, [&](size_t) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    ++done;
  });
  other.join();
  for (int i = 0; i < 1000 && done_when_other_ran < 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_GE(done_when_other_ran.load(), 0);
  EXPECT_LT(done_when_other_ran.load(), static_cast<long>(kItems) - 10);
}

TEST(ParallelForTest, UsesSeveralThreadsWhenAllowed) {
  std::mutex mu;
  std::set<std::thread::id> seen;
  std::atomic<int> inside{0}, overlap{0};
  ParallelFor(8, {4, nullptr}, [&](size_t) {
    if (++inside > 1) ++overlap;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    --inside;
    std::lock_guard<std::mutex> lock(mu);
    seen.insert(std::this_thread::get_id());
  });
  EXPECT_GT(seen.size(), 1u);
  EXPECT_GT(overlap.load(), 0);
}

TEST(BatchTest, FramesAreTheSameWhateverTheThreads) {
  const std::vector<Tensor> cache = Cache();
  const std::vector<TensorView> views = Views(cache);
  ThreadExecutor pool;
  for (const char* spec : {"lossless", "zstd(3)", "bounded(cos=0.999)"}) {
    SCOPED_TRACE(spec);
    auto codec = MakeCodec(spec);
    ASSERT_TRUE(codec.ok());
    for (uint64_t block_tokens : {uint64_t{0}, uint64_t{128}}) {
      BatchOptions one;
      one.block_tokens = block_tokens;
      auto expected = CompressTensors(**codec, views, one);
      ASSERT_TRUE(expected.ok()) << expected.status();
      ASSERT_EQ(expected->size(), cache.size());
      for (int threads : {2, 4, 8}) {
        for (bool shared : {false, true}) {
          BatchOptions many = one;
          many.parallelism = {threads, threads == 4 ? &pool : nullptr};
          many.shared_input = shared;
          std::vector<double> seconds;
          auto got = CompressTensors(**codec, views, many, &seconds);
          ASSERT_TRUE(got.ok()) << got.status();
          ASSERT_EQ(seconds.size(), cache.size());
          for (size_t i = 0; i < cache.size(); ++i) {
            EXPECT_TRUE((*got)[i].frame == (*expected)[i].frame)
                << "tensor " << i << ", " << threads << " threads, blocks of " << block_tokens;
            EXPECT_EQ((*got)[i].report.compressed_bytes, (*got)[i].frame.size());
            EXPECT_EQ((*got)[i].report.raw_bytes, cache[i].bytes.size());
          }
        }
      }
    }
  }
}

// A tensor in blocks is its blocks' ordinary frames back to back, each the one Compress makes
// of those tokens alone, and it decodes back to the whole tensor.
TEST(BatchTest, BigTensorsGoAsTokenBlocksThatDecodeBackWhole) {
  const std::vector<Tensor> cache = Cache();
  auto codec = MakeCodec("lossless");
  ASSERT_TRUE(codec.ok());
  BatchOptions options;
  options.block_tokens = 128;
  options.parallelism.threads = 3;
  auto out = CompressTensors(**codec, Views(cache), options);
  ASSERT_TRUE(out.ok()) << out.status();
  for (size_t i = 0; i < cache.size(); ++i) {
    const TensorMeta& meta = cache[i].meta;
    auto frames = SplitFrames((*out)[i].frame);
    ASSERT_TRUE(frames.ok());
    const uint64_t tokens = GeometryOf(meta).rows;
    ASSERT_EQ(frames->size(), (tokens + 127) / 128) << i;
    for (size_t b = 0; b < frames->size(); ++b) {
      const uint64_t count = std::min<uint64_t>(128, tokens - 128 * b);
      std::vector<uint8_t> block(TokenBytes(meta) * count);
      GatherTokens(meta, cache[i].bytes.data(), 128 * b, count, block.data());
      auto alone = (*codec)->Compress(TensorView::Make(TokenBlockMeta(meta, count), block).value());
      ASSERT_TRUE(alone.ok());
      EXPECT_TRUE(std::vector<uint8_t>((*frames)[b].begin(), (*frames)[b].end()) == alone->frame)
          << "tensor " << i << " block " << b;
    }
    EXPECT_EQ((*out)[i].report.meta.shape, meta.shape);
    EXPECT_TRUE((*out)[i].report.lossless);
  }

  std::vector<absl::Span<const uint8_t>> items;
  for (const CompressedTensor& c : *out) items.push_back(c.frame);
  for (int threads : {1, 4}) {
    for (bool shared : {false, true}) {
      std::vector<std::vector<uint8_t>> back(cache.size());
      BatchOptions decode;
      decode.parallelism.threads = threads;
      decode.shared_input = decode.shared_output = shared;
      auto metas = DecompressTensors(
          items,
          [&](size_t i, const TensorMeta& whole) -> absl::StatusOr<absl::Span<uint8_t>> {
            back[i].assign(whole.NumBytes(), 0xee);
            return absl::MakeSpan(back[i]);
          },
          decode);
      ASSERT_TRUE(metas.ok()) << metas.status();
      for (size_t i = 0; i < cache.size(); ++i) {
        EXPECT_EQ((*metas)[i].shape, cache[i].meta.shape);
        EXPECT_TRUE(back[i] == cache[i].bytes) << "tensor " << i << ", " << threads << " threads";
      }
    }
  }
}

TEST(BatchTest, TheFirstFailingTensorInInputOrderIsReported) {
  std::vector<Tensor> cache = Cache();
  auto codec = MakeCodec("lossless");
  ASSERT_TRUE(codec.ok());
  auto out = CompressTensors(**codec, Views(cache), {});
  ASSERT_TRUE(out.ok());
  std::vector<std::vector<uint8_t>> frames;
  for (CompressedTensor& c : *out) frames.push_back(c.frame);
  frames[2][frames[2].size() / 2] ^= 1;    // checksum mismatch
  frames[5].resize(frames[5].size() - 3);  // truncated
  std::vector<absl::Span<const uint8_t>> items(frames.begin(), frames.end());
  for (int threads : {1, 4}) {
    BatchOptions options;
    options.parallelism.threads = threads;
    options.label = [](size_t i) { return "T" + std::to_string(i); };
    int asked = 0;
    std::vector<uint8_t> sink;
    auto metas = DecompressTensors(
        items,
        [&](size_t, const TensorMeta& whole) -> absl::StatusOr<absl::Span<uint8_t>> {
          ++asked;
          sink.resize(whole.NumBytes());
          return absl::MakeSpan(sink);
        },
        options);
    ASSERT_FALSE(metas.ok());
    EXPECT_EQ(metas.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_EQ(metas.status().message().rfind("T2: ", 0), 0u) << metas.status();
    EXPECT_EQ(asked, 2);  // room for tensors 0 and 1 only: 2 failed before any was decoded
  }
}

TEST(BatchTest, BlocksOfDifferentTensorsAreRefused) {
  const std::vector<Tensor> cache = Cache();
  auto codec = MakeCodec("zstd(1)");
  ASSERT_TRUE(codec.ok());
  auto out = CompressTensors(**codec, Views(cache), {});
  ASSERT_TRUE(out.ok());
  std::vector<uint8_t> mixed = (*out)[0].frame;  // layer 0 K, then layer 0 V
  mixed.insert(mixed.end(), (*out)[1].frame.begin(), (*out)[1].frame.end());
  const absl::Span<const uint8_t> item = mixed;
  auto metas = DecompressExpectingNoRoom(absl::MakeConstSpan(&item, 1));
  ASSERT_FALSE(metas.ok());
  EXPECT_EQ(metas.status().code(), absl::StatusCode::kInvalidArgument) << metas.status();
  EXPECT_NE(metas.status().message().find("frame 1"), std::string::npos) << metas.status();
}

TEST(BatchTest, AWholeTensorOverTheLimitIsRefusedBeforeAnyRoomIsAsked) {
  const std::vector<Tensor> cache = Cache();
  auto codec = MakeCodec("zstd(1)");
  ASSERT_TRUE(codec.ok());
  BatchOptions blocks;
  blocks.block_tokens = 100;
  auto out = CompressTensors(**codec, Views(cache), blocks);
  ASSERT_TRUE(out.ok());
  const absl::Span<const uint8_t> item = (*out)[0].frame;  // 3 blocks, each under the limit
  BatchOptions options;
  options.max_tensor_bytes = cache[0].bytes.size() - 1;
  auto metas = DecompressExpectingNoRoom(absl::MakeConstSpan(&item, 1), options);
  ASSERT_FALSE(metas.ok());
  EXPECT_EQ(metas.status().code(), absl::StatusCode::kResourceExhausted) << metas.status();
  EXPECT_NE(metas.status().message().find("its frames decode to"), std::string::npos)
      << metas.status();
  // And each frame on its own, under a limit one block is over.
  options.max_tensor_bytes = uint64_t{1} << 36;
  options.limits.max_decoded_bytes = TokenBytes(cache[0].meta) * 100 - 1;
  metas = DecompressExpectingNoRoom(absl::MakeConstSpan(&item, 1), options);
  ASSERT_FALSE(metas.ok());
  EXPECT_EQ(metas.status().code(), absl::StatusCode::kResourceExhausted) << metas.status();
  EXPECT_NE(metas.status().message().find("frame 0"), std::string::npos) << metas.status();
}

TEST(BatchTest, ACheckThatFailsStopsTheCall) {
  const std::vector<Tensor> cache = Cache();
  auto codec = MakeCodec("zstd(1)");
  ASSERT_TRUE(codec.ok());
  std::atomic<int> checks{0};
  BatchOptions options;
  options.parallelism.threads = 2;
  options.check = [&] {
    return ++checks > 3 ? absl::CancelledError("call cancelled by the client") : absl::OkStatus();
  };
  auto out = CompressTensors(**codec, Views(cache), options);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(out.status().message(), "call cancelled by the client");
}

}  // namespace
}  // namespace kvcomp

// The datasets and timing shared by the benchmark tables (kvbench, kvbench_lossy).
#pragma once
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "core/kvcomp/dtype.h"
#include "core/kvcomp/tensor.h"

namespace kvcomp::bench {

// CPU time of this thread: "one core" even when the machine is shared with other work.
double ThreadSeconds();
double Median(std::vector<double> v);

// Runs round r of every row, then round r + 1, so that the drift of a shared machine over
// minutes reaches every row of a table alike (rows that each ran their rounds back to back
// have come out in an impossible order). `round(row, r)` runs one round of one row and returns
// its seconds; a row whose round took more than 3 s (lossless-max, zstd -19) runs no more.
template <typename Round>
void InterleavedRounds(int rounds, size_t rows, Round round) {
  std::vector<char> slow(rows, 0);
  for (int r = 0; r < rounds; ++r) {
    for (size_t j = 0; j < rows; ++j) {
      if (!slow[j]) slow[j] = round(j, r) > 3.0;
    }
  }
}

struct Item {
  std::string name;
  Tensor t;
};

struct Dataset {
  std::string name;
  std::vector<Item> items;
  uint64_t raw_bytes() const;
};

// The real caches in `dir` (4 runs x 5 layers, K and V). FP16: the .f16 files. BF16: the .f32
// files rounded to BF16 (nearest even), the same conversion for every codec in a table.
Dataset LoadSharedKv(const std::string& dir, DType dtype);

// Generated Llama-3-8B-shaped K and V of `layers` (core/kvcomp/synth/llama_synth.h).
Dataset Synth(DType dtype, const std::vector<int>& layers);

// "0,1,15,31" or "all" (the 32 layers of Llama-3-8B).
std::vector<int> ParseLayers(const std::string& text);

// The options both tables take. `layers` empty (--layers none) skips the generated data.
struct BenchOptions {
  std::string kv_dir;
  int rounds = 3;
  std::vector<int> layers = {0, 1, 15, 31};
  std::vector<std::string> specs;  // the table's rows (--codecs 'a;b' replaces them)
  bool peers = true;               // kvbench's peer rows (--no-peers)
};
// Parses argv into `options` (whose fields hold the defaults); false after printing usage.
bool ParseBenchArgs(int argc, char** argv, const char* program, BenchOptions* options);

// Decompresses `frame` into `out`, reusing its buffer as the peers reuse theirs (the bytes are
// resized, so only a first call or a larger tensor allocates).
absl::Status DecompressReusing(absl::Span<const uint8_t> frame, Tensor* out);

// Lets freed buffers go back to the heap instead of munmap, so that every codec measures its
// own work, not the kernel's page faults on fresh multi-MiB mappings.
void KeepFreedMemory();

}  // namespace kvcomp::bench

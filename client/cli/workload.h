// What `kvcomp bench` and `kvcomp load` work on: a KV cache file or folder, or a generated
// Llama-shaped cache ("llama:layers=1,heads=8,dim=128,tokens=512,dtype=fp16"), plus the
// latency statistics and the terminal progress line they share.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "client/io/kv_tensor.h"

namespace kvcomp::cli {

// A path (dump folder, .npy, .npz, .safetensors), or "llama:" followed by comma-separated
// key=value pairs: layers, heads, dim, tokens, dtype (fp16/fp32/bf16), seed. Unset keys take
// layers=1, heads=8, dim=128, tokens=512, dtype=fp16 (two 1 MiB FP16 tensors). `description`
// receives a one-line summary.
absl::StatusOr<io::KvCache> LoadWorkload(const std::string& data, std::string* description);

// Nearest-rank percentile of sorted values (q in [0, 1]); 0 when empty.
double Percentile(const std::vector<double>& sorted, double q);

// A progress line ("\r<label> 42% ...") on stderr, refreshed every 200 ms from its own thread,
// shown only when stdout is a terminal and `enabled`. `fraction` returns the work done, 0..1.
class Progress {
 public:
  Progress(std::string label, bool enabled, std::function<double()> fraction);
  ~Progress();  // stops and clears the line
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace kvcomp::cli

// llama.cpp sequence-state files (llama_state_seq_save_file: magic "ggsq", version 3), read
// into kvcomp tensors plus the file's other bytes, and written back byte for byte.
//
// The layout (llama.cpp src/llama-context.cpp state_seq_save_file, src/llama-kv-cache.cpp
// state_write / state_write_meta / state_write_data; all little-endian):
//
//   u32 magic 'ggsq'  u32 version 3  u32 n_token_count  i32 tokens[n_token_count]
//   u32 n_stream, then per stream: u32 cell_count; if it is not 0:
//     per cell: i32 pos, u32 n_seq_id, i32 seq_id[n_seq_id]
//     u32 v_trans, u32 n_layer
//     per layer, K: i32 ggml type, u64 row bytes, cell_count rows
//     per layer, V: v_trans 0: as K
//                   v_trans 1: i32 ggml type, u32 element bytes, u32 n_embd_v_gqa, then
//                              n_embd_v_gqa rows of cell_count elements (transposed)
//
// Each layer's K and V become a token-major tensor [cells, row elements] named layer{L}_k /
// layer{L}_v (a transposed V is transposed back, so K and V read alike); the ggml types F32,
// F16, BF16, Q8_0 and Q4_0 map to kvcomp's dtypes (a quantised row counts blocks of 32). The
// rest of the file, every byte that is not K/V data, is the *skeleton*: the file with each data
// block cut out. It holds the tokens, the cells, v_trans and every section header, and it
// alone says where each tensor goes back, so a state file is its skeleton plus its tensors.
//
// The state's heads are not in the file (a row is n_embd_k_gqa values), so a tensor is
// [cells, heads x head_dim]; token-major, a codec sees the same channels either way.
//
// Refused, naming the field and its byte offset: another magic or version, a ggml type other
// than those five, row sizes that are not whole elements, a truncated file, bytes left after
// the last section (an SWA or hybrid model's state holds a second cache), fields out of range
// (a model with per-cell extras, such as M-RoPE's positions, shifts every later field), and
// cells in more than one stream.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "client/io/file_util.h"
#include "client/io/kv_tensor.h"

namespace kvcomp::io {

inline constexpr uint32_t kLlamaStateMagic = 0x67677371;  // 'ggsq'; on disk "qsgg"
inline constexpr uint32_t kLlamaStateVersion = 3;

// True when `head` starts with the sequence-state magic (any version).
bool HasLlamaStateMagic(absl::Span<const uint8_t> head);

// What a state holds, for reports.
struct LlamaStateSummary {
  uint32_t tokens = 0;
  uint32_t cells = 0;
  uint32_t streams = 0;
  uint32_t v_trans = 0;
  uint32_t layers = 0;
  uint64_t file_bytes = 0;       // the state file's size
  uint64_t skeleton_bytes = 0;   // its bytes that are not K/V data
  std::string ToString() const;  // "420 tokens, 420 cells, 5 layers, v_trans 1, ..."
};

struct LlamaState {
  KvCache tensors;  // layer{L}_k, layer{L}_v for each layer, in file order (every K, then V)
  std::vector<uint8_t> skeleton;
  LlamaStateSummary summary;
};

// Parses a whole state file. `what` names it in errors ("STATE: ...").
absl::StatusOr<LlamaState> ParseLlamaState(absl::Span<const uint8_t> file, absl::string_view what);
absl::StatusOr<LlamaState> ReadLlamaStateFile(const std::string& path);

// What a skeleton holds (checked as ParseLlamaState checks a file), without its tensors.
absl::StatusOr<LlamaStateSummary> SummarizeLlamaSkeleton(absl::Span<const uint8_t> skeleton);

// Writes the state file that `skeleton` and `tensors` make: every tensor the skeleton has a
// place for must be in `tensors` (found by layer and kind) with the dtype and shape it
// declares, and no other; otherwise INVALID_ARGUMENT naming the tensor.
absl::Status AssembleLlamaState(absl::Span<const uint8_t> skeleton, const KvCache& tensors,
                                Sink& out);
// AssembleLlamaState into `path`, atomically. `overwrite` replaces an existing file.
absl::Status WriteLlamaStateFile(const std::string& path, absl::Span<const uint8_t> skeleton,
                                 const KvCache& tensors, bool overwrite);

}  // namespace kvcomp::io

// .npy and .npz files as KV caches. An .npz holds one array per tensor ("layer{L}_k",
// "layer{L}_v" give layer and kind; other names are kept with layer -1); an .npy holds one.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "client/io/file_util.h"
#include "client/io/kv_tensor.h"
#include "client/io/zip.h"

namespace kvcomp::io {

// Parses an .npz image (STORED or DEFLATE members, optional kvcomp.json sidecar). Arrays
// that cannot be KV tensors (another dtype, e.g. int32 token ids or a metadata string) are
// skipped and, when `skipped` is given, listed there as "name (descr)"; but an array named
// layer{L}_{k,v} must have a KV dtype.
absl::StatusOr<KvCache> ParseNpz(absl::Span<const uint8_t> archive, absl::string_view what,
                                 std::vector<std::string>* skipped = nullptr);

// Writes an .npz image with STORED members "<name>.npy" (plus kvcomp.json when needed), as
// np.savez does; np.load reads it back.
absl::Status EncodeNpz(const KvCache& cache, Sink& sink, const ZipWriteOptions& options = {});

absl::StatusOr<KvCache> ReadNpzFile(const std::string& path,
                                    std::vector<std::string>* skipped = nullptr);
absl::Status WriteNpzFile(const std::string& path, const KvCache& cache,
                          const ZipWriteOptions& options = {});

// One tensor from "X.npy", with "X.npy.kvcomp.json" applied when it exists; the tensor is
// named after the file stem.
absl::StatusOr<KvCache> ReadNpyFile(const std::string& path);
// Exactly one tensor; writes the sidecar too when the tensor needs one (BF16, token-major),
// and removes a stale sidecar otherwise.
absl::Status WriteNpyFile(const std::string& path, const KvCache& cache);

}  // namespace kvcomp::io

// The kvcomp sidecar: what .npy/.npz cannot say by themselves.
//
// NumPy has no bfloat16, so BF16 tensors are stored as uint16 arrays ('<u2', the raw bit
// patterns) and a small JSON document marks them; it can also mark token-major layouts:
//
//   {"kvcomp_sidecar": 1,
//    "tensors": {"layer0_k": {"dtype": "BF16", "layout": "token_major"}}}
//
// In an .npz it is the archive member "kvcomp.json" (np.load lists it but leaves it alone);
// next to an .npy file "X.npy" it is the file "X.npy.kvcomp.json". Only entries that differ
// from the defaults appear (a '<u2' array without a BF16 entry is rejected; the default
// layout is head_major), and writers emit the sidecar only when some tensor needs it.
// From Python:
//
//   bits = bf16_tensor.view(torch.uint16).numpy()           # the BF16 bit patterns
//   np.savez("cache.npz", layer0_k=bits)
//   with zipfile.ZipFile("cache.npz", "a") as z:
//       z.writestr("kvcomp.json", json.dumps({"kvcomp_sidecar": 1,
//                                             "tensors": {"layer0_k": {"dtype": "BF16"}}}))
#pragma once

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "client/io/kv_tensor.h"

namespace kvcomp::io {

inline constexpr char kNpzSidecarMember[] = "kvcomp.json";
inline constexpr char kNpySidecarSuffix[] = ".kvcomp.json";

struct SidecarEntry {
  bool bf16 = false;
  Layout layout = Layout::kHeadMajor;
};

using Sidecar = std::map<std::string, SidecarEntry>;

absl::StatusOr<Sidecar> ParseSidecar(absl::string_view json, absl::string_view what);
// Empty when no tensor needs an entry.
std::string MakeSidecar(const KvCache& cache);

}  // namespace kvcomp::io

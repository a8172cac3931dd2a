#include "tests/fuzz/server_target.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/kvcomp/dtype.h"
#include "server/kvcomp_ops.h"
#include "server/shm_sessions.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/fuzz/targets.h"

namespace kvcomp::fuzz {
namespace {

// Work caps, in the spirit of the server's message size limit: big enough for real
// structure, small enough for thousands of runs a minute under ASan.
constexpr uint64_t kMaxCompressBytes = 256 << 10;
constexpr uint64_t kMaxAnalyzeBytes = 16 << 10;
constexpr int kMaxAnalyzeConfigs = 4;

// Shared memory: one local session with the regions kFuzzRegions names, registered the way the
// server registers a client's (sealed memfds through ShmSessions), so that requests naming
// (region, offset, byte_size) reach the same bound checks, reads and output windows as a
// client's. Their bytes are set from each input before it runs (Regions().Fill).
class FuzzRegions {
 public:
  FuzzRegions() : sessions_(server::ShmLimits{}) {
    token_ = *sessions_.Open(getpid(), getuid());
    for (size_t i = 0; i < std::size(kFuzzRegions); ++i) {
      const int fd = ::memfd_create(kFuzzRegions[i], MFD_CLOEXEC | MFD_ALLOW_SEALING);
      KV_FUZZ_CHECK(fd >= 0 && ::ftruncate(fd, kFuzzRegionBytes) == 0 &&
                        ::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) == 0,
                    "memfd for region ", kFuzzRegions[i]);
      void* map = ::mmap(nullptr, kFuzzRegionBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      KV_FUZZ_CHECK(map != MAP_FAILED, "mmap of region ", kFuzzRegions[i]);
      bytes_[i] = static_cast<uint8_t*>(map);
      const absl::StatusOr<std::string> key = sessions_.AddFd(token_, fd);  // takes the fd
      const absl::Status s =
          key.ok() ? sessions_.Register(token_, kFuzzRegions[i], *key, 0, kFuzzRegionBytes)
                   : key.status();
      KV_FUZZ_CHECK(s.ok(), "registering region ", kFuzzRegions[i], ": ", s.ToString());
    }
  }

  // The first region holds the input's bytes over and over; the others are zeroed.
  void Fill(absl::Span<const uint8_t> data) {
    for (size_t i = 0; i < std::size(kFuzzRegions); ++i) {
      std::memset(bytes_[i], 0, kFuzzRegionBytes);
    }
    for (uint64_t at = 0; !data.empty() && at < kFuzzRegionBytes; at += data.size()) {
      std::memcpy(bytes_[0] + at, data.data(),
                  std::min<uint64_t>(data.size(), kFuzzRegionBytes - at));
    }
  }

  // The bytes `ref` names as this process sees them (the call succeeded, so they exist).
  absl::Span<const uint8_t> Bytes(const v1::SharedMemoryRef& ref) const {
    for (size_t i = 0; i < std::size(kFuzzRegions); ++i) {
      if (ref.region() == kFuzzRegions[i]) {
        KV_FUZZ_CHECK(
            ref.offset() <= kFuzzRegionBytes && ref.byte_size() <= kFuzzRegionBytes - ref.offset(),
            "a reference the server took lies past region ", ref.region());
        return absl::MakeConstSpan(bytes_[i] + ref.offset(), ref.byte_size());
      }
    }
    KV_FUZZ_CHECK(false, "the server took a reference to unknown region '", ref.region(), "'");
    return {};
  }

  server::ShmAccess Access() const { return {&sessions_, token_, /*local=*/true}; }

 private:
  server::ShmSessions sessions_;
  std::string token_;
  uint8_t* bytes_[std::size(kFuzzRegions)] = {};
};

FuzzRegions& Regions() {
  static FuzzRegions* regions = new FuzzRegions;  // lives as long as the process
  return *regions;
}

server::OpsOptions Options() {
  server::OpsOptions options;
  options.decode_limits.max_decoded_bytes = kMaxDecodedBytes;
  options.shm = Regions().Access();
  return options;
}

// Calls that named shared memory and succeeded (ShmCallsServed).
uint64_t shm_calls_served = 0;

template <typename Request>
void CountIfShared(const Request& request) {
  bool shared = request.has_output();
  for (const auto& t : request.tensors()) shared = shared || t.has_shm();
  if (shared) ++shm_calls_served;
}

// A tensor's bytes, inline or in a region.
absl::Span<const uint8_t> InputBytes(const v1::Tensor& t) {
  if (t.has_shm()) return Regions().Bytes(t.shm());
  return absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(t.raw_contents().data()),
                             t.raw_contents().size());
}

// Whether `where` lies inside the output window `window` asked for.
bool InWindow(const v1::SharedMemoryRef& where, const v1::SharedMemoryRef& window) {
  return where.region() == window.region() && where.offset() >= window.offset() &&
         where.byte_size() <= window.byte_size() &&
         where.offset() - window.offset() <= window.byte_size() - where.byte_size();
}

// A request the server refuses must be refused with a client error, never INTERNAL/UNKNOWN.
void CheckRefusal(const absl::Status& s, absl::string_view rpc) {
  const auto code = s.code();
  KV_FUZZ_CHECK(code == absl::StatusCode::kInvalidArgument || code == absl::StatusCode::kDataLoss ||
                    code == absl::StatusCode::kResourceExhausted ||
                    code == absl::StatusCode::kFailedPrecondition,
                rpc, ": ", s.ToString());
}

// Inline bytes and the bytes the tensors name in regions (each range at most a region).
uint64_t RawBytes(const google::protobuf::RepeatedPtrField<v1::Tensor>& tensors) {
  uint64_t n = 0;
  for (const auto& t : tensors) {
    n += t.raw_contents().size() + std::min<uint64_t>(t.shm().byte_size(), kFuzzRegionBytes);
  }
  return n;
}

// Returns whether Compress succeeded (and its frames decoded back as they must).
bool FuzzCompress(const v1::CompressRequest& request) {
  if (RawBytes(request.tensors()) > kMaxCompressBytes) return false;
  v1::CompressResponse response;
  const absl::Status s = server::RunCompress(request, &response, Options());
  if (!s.ok()) {
    CheckRefusal(s, "Compress");
    return false;
  }
  KV_FUZZ_CHECK(response.tensors_size() == request.tensors_size(), "Compress tensor count");
  CountIfShared(request);
  for (const v1::CompressedTensor& t : response.tensors()) {
    // A frame in the output window is where the reply says, and not in the reply too.
    KV_FUZZ_CHECK(request.has_output() == t.has_shm(), "Compress: frame placement");
    if (t.has_shm()) {
      KV_FUZZ_CHECK(InWindow(t.shm(), request.output()) && t.frame().empty() &&
                        t.shm().byte_size() == t.report().compressed_bytes(),
                    "Compress: frame of '", t.name(), "' outside its window or mis-sized");
    }
  }
  // Frames written to a region are decoded from there (a reference as input, no window).
  v1::DecompressRequest back_request;
  *back_request.mutable_tensors() = response.tensors();
  v1::DecompressResponse back;
  const absl::Status d = server::RunDecompress(back_request, &back, Options());
  KV_FUZZ_CHECK(d.ok(), "Decompress of Compress's own frames: ", d.ToString());
  KV_FUZZ_CHECK(back.tensors_size() == request.tensors_size(), "Decompress tensor count");
  for (int i = 0; i < request.tensors_size(); ++i) {
    const v1::Tensor& in = request.tensors(i);
    const v1::Tensor& out = back.tensors(i);
    const absl::Span<const uint8_t> in_bytes = InputBytes(in);
    KV_FUZZ_CHECK(out.raw_contents().size() == in_bytes.size(), "tensor ", i, " size");
    // Datatype names parse case-insensitively and come back canonical ("fP16" -> "FP16").
    const absl::StatusOr<DType> in_dtype = ParseDType(in.datatype());
    KV_FUZZ_CHECK(in_dtype.ok() && DTypeName(*in_dtype) == out.datatype(), "tensor ", i,
                  " datatype '", in.datatype(), "' came back as '", out.datatype(), "'");
    if (response.tensors(i).report().lossless()) {
      KV_FUZZ_CHECK(std::equal(in_bytes.begin(), in_bytes.end(),
                               reinterpret_cast<const uint8_t*>(out.raw_contents().data())),
                    "tensor ", i, " ('", request.codec(), "') lossless but not bit-exact");
    }
    KV_FUZZ_CHECK(
        out.token_offset() == in.token_offset() && out.total_tokens() == in.total_tokens(),
        "tensor ", i, " token block not echoed");
  }
  return true;
}

bool FuzzDecompress(const v1::DecompressRequest& request) {
  v1::DecompressResponse response;
  const absl::Status s = server::RunDecompress(request, &response, Options());
  if (!s.ok()) {
    CheckRefusal(s, "Decompress");
    return false;
  }
  KV_FUZZ_CHECK(response.tensors_size() == request.tensors_size(), "Decompress tensor count");
  CountIfShared(request);
  // The decode limit bounds the whole call, so many small frames cannot multiply it.
  uint64_t decoded = 0;
  for (const v1::Tensor& t : response.tensors()) {
    decoded += t.raw_contents().size();
    KV_FUZZ_CHECK(request.has_output() == t.has_shm(), "Decompress: tensor placement");
    if (t.has_shm()) {
      KV_FUZZ_CHECK(InWindow(t.shm(), request.output()) && t.raw_contents().empty(),
                    "Decompress: tensor '", t.name(), "' outside its window");
    }
  }
  KV_FUZZ_CHECK(decoded <= kMaxDecodedBytes, "Decompress decoded ", decoded,
                " bytes, over the limit of ", kMaxDecodedBytes);
  return true;
}

// A stream runs its chunks one by one through the unary functions, and ends at the first
// chunk that fails (as StreamReactor does).
template <typename Request>
void FuzzStream(absl::Span<const uint8_t> chunks, bool (*run)(const Request&)) {
  InputReader in(chunks);
  for (int chunk = 0; chunk < 16 && in.remaining() > 0; ++chunk) {
    const absl::Span<const uint8_t> bytes = in.Bytes(in.Varint());
    Request request;
    if (!request.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return;
    if (!run(request)) return;
  }
}

void FuzzAnalyze(const v1::AnalyzeRequest& request) {
  if (RawBytes(request.tensors()) > kMaxAnalyzeBytes ||
      request.codecs_size() + request.sweeps_size() > kMaxAnalyzeConfigs) {
    return;
  }
  v1::AnalyzeResponse response;
  const absl::Status s = server::RunAnalyze(request, &response, Options());
  if (!s.ok()) {
    CheckRefusal(s, "Analyze");
    return;
  }
  // Every configuration is judged and the recommendation is one of them.
  KV_FUZZ_CHECK(response.codecs_size() > 0, "Analyze reported no configuration");
  if (response.recommendation().found()) {
    bool listed = false;
    for (const v1::CodecAnalysis& c : response.codecs()) {
      listed = listed || c.codec() == response.recommendation().codec();
    }
    KV_FUZZ_CHECK(listed, "recommended '", response.recommendation().codec(), "' not analysed");
  }
  KV_FUZZ_CHECK(request.has_rope_theta() == response.has_rope(), "RoPE check ",
                request.has_rope_theta() ? "missing" : "unasked");
}

}  // namespace

void FuzzServerRequest(absl::Span<const uint8_t> data) {
  if (data.empty()) return;
  Regions().Fill(data);
  const auto* bytes = reinterpret_cast<const char*>(data.data() + 1);
  const int size = static_cast<int>(data.size() - 1);
  switch (static_cast<Rpc>(data[0] % kRpcCount)) {
    case Rpc::kCompress: {
      v1::CompressRequest request;
      if (request.ParseFromArray(bytes, size)) FuzzCompress(request);
      return;
    }
    case Rpc::kDecompress: {
      v1::DecompressRequest request;
      if (request.ParseFromArray(bytes, size)) FuzzDecompress(request);
      return;
    }
    case Rpc::kAnalyze: {
      v1::AnalyzeRequest request;
      if (request.ParseFromArray(bytes, size)) FuzzAnalyze(request);
      return;
    }
    case Rpc::kCompressStream:
      FuzzStream<v1::CompressRequest>(data.subspan(1), &FuzzCompress);
      return;
    case Rpc::kDecompressStream:
      FuzzStream<v1::DecompressRequest>(data.subspan(1), &FuzzDecompress);
      return;
  }
}

namespace {

v1::SharedMemoryRef Ref(const char* region, uint64_t offset, uint64_t byte_size) {
  v1::SharedMemoryRef ref;
  ref.set_region(region);
  ref.set_offset(offset);
  ref.set_byte_size(byte_size);
  return ref;
}

// An FP16 [2, 64, 64] tensor (16 KiB) named in a region.
v1::Tensor ShmTensor(const std::string& name, const v1::SharedMemoryRef& ref) {
  v1::Tensor t;
  t.set_name(name);
  t.set_datatype("FP16");
  for (int64_t d : {2, 64, 64}) t.add_shape(d);
  *t.mutable_shm() = ref;
  return t;
}

}  // namespace

uint64_t ShmCallsServed() { return shm_calls_served; }

std::vector<std::vector<uint8_t>> ShmSeeds() {
  constexpr uint64_t kTensor = 2 * 64 * 64 * 2;
  std::vector<std::vector<uint8_t>> out;
  auto compress = [&](const char* codec, uint64_t block_tokens, const v1::SharedMemoryRef* window,
                      std::vector<v1::SharedMemoryRef> refs) {
    v1::CompressRequest r;
    r.set_codec(codec);
    r.set_block_tokens(block_tokens);
    for (size_t i = 0; i < refs.size(); ++i) {
      *r.add_tensors() = ShmTensor(absl::StrCat("layer", i / 2, i % 2 ? "_v" : "_k"), refs[i]);
    }
    if (window != nullptr) *r.mutable_output() = *window;
    out.push_back(ServerInput(Rpc::kCompress, r.SerializeAsString()));
  };
  const v1::SharedMemoryRef in0 = Ref("a", 0, kTensor), in1 = Ref("a", kTensor, kTensor);
  const v1::SharedMemoryRef window = Ref("b", 0, 64 << 10);
  for (const char* codec : {"lossless", "zstd(3)", "bounded(cos=0.9999)", "gear+rans"}) {
    compress(codec, 0, &window, {in0, in1});
  }
  compress("lossless", 16, &window, {in0, in1});  // token blocks into a window
  compress("zstd(3)", 0, nullptr, {in0, in1});    // frames in the reply
  const v1::SharedMemoryRef after = Ref("a", 2 * kTensor, 32 << 10);
  compress("zstd(3)", 0, &after, {in0, in1});  // output beside the inputs
  const v1::SharedMemoryRef overlap = Ref("a", kTensor / 2, kTensor);
  compress("zstd(3)", 0, &overlap, {in0});                               // output over an input
  compress("zstd(3)", 0, nullptr, {Ref("a", (64 << 10) - 8, kTensor)});  // past the region
  compress("zstd(3)", 0, nullptr, {Ref("a", UINT64_MAX - 7, 16)});       // offset wraps
  compress("zstd(3)", 0, nullptr, {Ref("nowhere", 0, kTensor)});         // unknown region
  compress("zstd(3)", 0, nullptr, {Ref("a", 0, kTensor - 2)});           // size unlike shape
  const v1::SharedMemoryRef tiny = Ref("b", 0, 100);
  compress("zstd(3)", 0, &tiny, {in0});  // a window too small
  {                                      // both bytes and a reference
    v1::CompressRequest r;
    r.set_codec("zstd(3)");
    *r.add_tensors() = ShmTensor("layer0_k", in0);
    r.mutable_tensors(0)->set_raw_contents(std::string(kTensor, '\0'));
    out.push_back(ServerInput(Rpc::kCompress, r.SerializeAsString()));
  }
  // Decompress: frames in the request, the tensors written to a window (and one too small).
  for (const v1::SharedMemoryRef& w : {window, tiny}) {
    v1::DecompressRequest r;
    v1::Tensor plain = ShmTensor("layer0_k", in0);
    plain.clear_shm();
    plain.set_raw_contents(std::string(kTensor, '\1'));
    v1::CompressRequest c;
    c.set_codec("zstd(3)");
    *c.add_tensors() = plain;
    v1::CompressResponse answer;
    if (!server::RunCompress(c, &answer, {}).ok()) continue;
    *r.mutable_tensors() = answer.tensors();
    *r.mutable_output() = w;
    out.push_back(ServerInput(Rpc::kDecompress, r.SerializeAsString()));
  }
  return out;
}

std::vector<uint8_t> StreamInput(Rpc rpc, const std::vector<std::string>& chunks) {
  InputWriter out;
  out.U8(static_cast<uint8_t>(rpc));
  for (const std::string& c : chunks) {
    out.Varint(c.size());
    out.Bytes(absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(c.data()), c.size()));
  }
  return out.bytes();
}

std::vector<uint8_t> ServerInput(Rpc rpc, const std::string& request_bytes) {
  std::vector<uint8_t> out(1 + request_bytes.size());
  out[0] = static_cast<uint8_t>(rpc);
  std::copy(request_bytes.begin(), request_bytes.end(), out.begin() + 1);
  return out;
}

}  // namespace kvcomp::fuzz

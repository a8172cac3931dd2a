#include "server_target.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "fuzz_input.h"
#include "kvcomp/dtype.h"
#include "server/kvcomp_ops.h"
#include "targets.h"

namespace kvcomp::fuzz {
namespace {

// Work caps, in the spirit of the server's message size limit: big enough for real
// structure, small enough for thousands of runs a minute under ASan.
constexpr uint64_t kMaxCompressBytes = 256 << 10;
constexpr uint64_t kMaxAnalyzeBytes = 16 << 10;
constexpr int kMaxAnalyzeConfigs = 4;

server::OpsOptions Options() {
  server::OpsOptions options;
  options.decode_limits.max_decoded_bytes = kMaxDecodedBytes;
  return options;
}

// A request the server refuses must be refused with a client error, never INTERNAL/UNKNOWN.
void CheckRefusal(const absl::Status& s, absl::string_view rpc) {
  const auto code = s.code();
  KV_FUZZ_CHECK(code == absl::StatusCode::kInvalidArgument || code == absl::StatusCode::kDataLoss ||
                    code == absl::StatusCode::kResourceExhausted ||
                    code == absl::StatusCode::kFailedPrecondition,
                rpc, ": ", s.ToString());
}

uint64_t RawBytes(const google::protobuf::RepeatedPtrField<v1::Tensor>& tensors) {
  uint64_t n = 0;
  for (const auto& t : tensors) n += t.raw_contents().size();
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
  v1::DecompressRequest back_request;
  *back_request.mutable_tensors() = response.tensors();
  v1::DecompressResponse back;
  const absl::Status d = server::RunDecompress(back_request, &back, Options());
  KV_FUZZ_CHECK(d.ok(), "Decompress of Compress's own frames: ", d.ToString());
  KV_FUZZ_CHECK(back.tensors_size() == request.tensors_size(), "Decompress tensor count");
  for (int i = 0; i < request.tensors_size(); ++i) {
    const v1::Tensor& in = request.tensors(i);
    const v1::Tensor& out = back.tensors(i);
    KV_FUZZ_CHECK(out.raw_contents().size() == in.raw_contents().size(), "tensor ", i, " size");
    // Datatype names parse case-insensitively and come back canonical ("fP16" -> "FP16").
    const absl::StatusOr<DType> in_dtype = ParseDType(in.datatype());
    KV_FUZZ_CHECK(in_dtype.ok() && DTypeName(*in_dtype) == out.datatype(), "tensor ", i,
                  " datatype '", in.datatype(), "' came back as '", out.datatype(), "'");
    if (response.tensors(i).report().lossless()) {
      KV_FUZZ_CHECK(out.raw_contents() == in.raw_contents(), "tensor ", i, " ('", request.codec(),
                    "') lossless but not bit-exact");
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
  // The decode limit bounds the whole call, so many small frames cannot multiply it.
  uint64_t decoded = 0;
  for (const v1::Tensor& t : response.tensors()) decoded += t.raw_contents().size();
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

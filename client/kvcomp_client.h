// kvcomp client library: a C++ client for the kvcomp.v1.KVCompressor service
// (proto/kvcomp/v1/kvcomp.proto) and the standard gRPC health service. Calls are synchronous,
// or asynchronous with a completion callback (CompressAsync, DecompressAsync).
//
//   KV_ASSIGN_OR_RETURN(auto client, kvcomp::client::Client::Connect("127.0.0.1:50051"));
//   KV_ASSIGN_OR_RETURN(kvcomp::io::KvCache cache, kvcomp::io::ReadKvCache("run/"));
//   KV_ASSIGN_OR_RETURN(auto compressed, client->Compress("zstd(3)", cache));
//   // compressed.tensors[i].frame is a self-describing frame; concatenated, they form a .kvc
//   KV_ASSIGN_OR_RETURN(auto back, client->Decompress(compressed.Frames()));
//
// Compress and Decompress are one unary RPC while the request fits under
// ClientOptions::stream_threshold_bytes. Above it they stream (CompressStream /
// DecompressStream) in chunks that each stay under the threshold: whole tensors grouped, and a
// tensor bigger than the threshold cut along its token axis into token blocks, each compressed
// into a frame of its own. The caller sees the same CompressResult and KvCache either way: a
// tensor's compressed form is its frames back to back in token order (the stream container of
// docs/FORMAT.md; one frame for a tensor sent whole), and Decompress accepts both.
// Every call (a whole stream counts as one) is bounded by ClientOptions::timeout, retried on
// UNAVAILABLE (and only on it: nothing else is safe to repeat blindly; a stream is repeated from
// its first chunk) with exponential backoff and jitter as ClientOptions::retry says. Failures come
// back as absl::Status with the gRPC status code unchanged (the numeric codes are the same) and the
// server's message, prefixed with the method name: e.g. INVALID_ARGUMENT
// "Compress: unknown stage 'zstdd' at offset 0". Client-side failures use the same codes
// (DEADLINE_EXCEEDED, UNAVAILABLE when nothing listens, RESOURCE_EXHAUSTED above the message
// size limit). A Client is thread-safe: calls may run concurrently from many threads.
#pragma once

#include "core/kvcomp/catalogue.h"
#include "kvcomp/v1/kvcomp.pb.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "client/io/kv_tensor.h"
#include "core/kvcomp/error_metrics.h"

namespace kvcomp::client {

// Retries on UNAVAILABLE (the server is unreachable, restarting or draining). Attempt n
// (n >= 1) waits min(initial_backoff * multiplier^(n-1), max_backoff), scaled by a uniform
// random factor in [1 - jitter, 1 + jitter], before it starts. Each attempt has the full
// ClientOptions::timeout. The channel's reconnect backoff runs from initial_backoff to
// max_backoff too, so a retry after a server restart finds the new server.
struct RetryPolicy {
  int max_attempts = 4;  // 1: no retry
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(2);
  double multiplier = 2.0;
  double jitter = 0.2;  // in [0, 1]
};

// TLS towards the server. Paths to PEM files; empty root_ca uses the system roots. Client
// certificate and key (both or neither) enable mutual TLS.
struct TlsOptions {
  bool enabled = false;
  std::string root_ca_path;
  std::string cert_chain_path;
  std::string private_key_path;
  // Expected name in the server certificate when it differs from the target's host (tests,
  // or an IP address target).
  std::string server_name_override;
};

struct ClientOptions {
  // Deadline of each RPC attempt, counted from its start.
  absl::Duration timeout = absl::Seconds(120);
  // Largest message sent or received, in bytes. The server has its own limit
  // (kvcomp-server --max-message-bytes, 64 MiB by default). Compress and Decompress stream
  // above stream_threshold_bytes; other requests above this limit fail on the client with
  // RESOURCE_EXHAUSTED before anything is sent, as does one token (or one frame's decoded
  // tensor) too big for a message.
  int max_message_bytes = 512 << 20;
  // Compress and Decompress requests whose tensors (raw bytes, or frames and the raw bytes they
  // decode to) exceed this go as a stream of chunks each within it. 0: derived from
  // max_message_bytes, capped at 32 MiB (a server holds about two chunks of a stream, so this
  // bounds its memory for any cache), less 1/16 (at most 64 KiB) for message headers. At most
  // max_message_bytes.
  int64_t stream_threshold_bytes = 0;
  // How long Connect waits for the channel to become ready; zero connects lazily (the first
  // call then fails with UNAVAILABLE if nothing listens).
  absl::Duration connect_timeout = absl::ZeroDuration();
  RetryPolicy retry;
  TlsOptions tls;
  // gRPC load-balancing policy: "pick_first" (gRPC's default) or "round_robin", which spreads
  // calls over every address a target resolves to (`ipv4:127.0.0.1:P1,127.0.0.1:P2`, or a
  // headless Kubernetes Service's `dns:///` name). Empty leaves gRPC's default.
  std::string load_balancing_policy;
  // gRPC channels (TCP connections each) that calls are spread over, round robin. One HTTP/2
  // connection carries one message's bytes at a time: with many large calls in flight at once
  // (an inference host offloading from several threads) a few connections cut the queueing
  // of one call's megabytes behind another's. 1 to 64.
  int connections = 1;
  // Called on the calling thread each time the server has answered one more chunk of a
  // streamed Compress or Decompress, with (answered, total) chunks: for progress display.
  // One-message calls do not call it. May restart from 1 when a stream is retried.
  std::function<void(size_t answered, size_t total)> on_chunk;
};

// The per-tensor report of the server (see TensorReport in kvcomp.proto).
struct TensorReport {
  std::string name;
  int32_t layer = -1;
  Kind kind = Kind::kUnspecified;
  DType dtype = DType::kFP16;
  std::vector<int64_t> shape;
  uint64_t raw_bytes = 0;
  uint64_t compressed_bytes = 0;  // the whole frame, every header counted
  double ratio = 0;
  std::string codec;  // the concrete pipeline written into the frame
  bool lossless = true;
  std::optional<ErrorStats> error;  // lossy codecs only (count and nonfinite left at 0)
  double compress_seconds = 0;
  double decompress_seconds = 0;  // Analyze only
};

struct Totals {
  uint64_t raw_bytes = 0;
  uint64_t compressed_bytes = 0;
  double ratio = 0;
};

struct CompressedTensor {
  std::string name;
  // The tensor's compressed form: one frame, or, for a tensor streamed in token blocks, the
  // blocks' frames back to back in token order (docs/FORMAT.md, "Streams and token blocks").
  std::vector<uint8_t> frame;
  // For a tensor sent in token blocks, the blocks' reports merged: shape, bytes and seconds
  // of the whole tensor; mae, rmse and max_abs exact over the tensor; rel_mae, rel_rmse,
  // cosine and snr_db those of its worst block; codec the blocks' distinct pipelines.
  TensorReport report;
};

struct CompressResult {
  std::vector<CompressedTensor> tensors;  // in request order
  Totals totals;
  // Views of each tensor's compressed form, e.g. for Decompress; concatenated, a .kvc file.
  std::vector<absl::Span<const uint8_t>> Frames() const;
};

struct CodecAnalysis {
  std::string codec;
  std::vector<TensorReport> reports;
  Totals totals;
};

// A tensor's compressed form to decompress (one frame, or its token blocks' frames in token
// order), with the name to give the decoded tensor (may be empty).
struct FrameRef {
  std::string name;
  absl::Span<const uint8_t> frame;
};

// The wire form of a tensor (name, layer, kind, datatype, shape, layout, raw bytes), as every
// call of this library sends it; for callers that build requests themselves (kvcomp load).
void ToProto(const io::NamedTensor& tensor, v1::Tensor* out);
// Every field of the wire form but the bytes.
void MetaToProto(const std::string& name, const TensorMeta& meta, v1::Tensor* out);

// ---- Shared memory (same host; shm_region.h) ----

// A byte range of a region registered with the server.
struct RegionSlice {
  std::string region;
  uint64_t offset = 0;
  uint64_t byte_size = 0;
};

// A tensor whose bytes are in a region (byte_size = meta.NumBytes()).
struct ShmTensor {
  std::string name;
  TensorMeta meta;
  RegionSlice bytes;
};

// A compressed tensor whose frame (or token blocks' frames) is in a region.
struct ShmFrame {
  std::string name;
  RegionSlice frame;
};

struct ShmCompressed {
  std::string name;
  RegionSlice frame;  // where the server wrote it
  TensorReport report;
};
struct ShmCompressResult {
  std::vector<ShmCompressed> tensors;  // in request order
  Totals totals;
};

struct ShmDecompressed {
  std::string name;
  TensorMeta meta;
  RegionSlice bytes;  // where the server wrote it
};

// A region as the server has it registered.
struct RegionInfo {
  std::string name;
  std::string key;
  uint64_t offset = 0;
  uint64_t byte_size = 0;
  bool writable = false;
};

class SharedMemoryRegion;
class ShmSession;

// A tensor and a per-tensor report of a reply, read as every call of this library reads them
// (kvcomp/v1/convert.h). DATA_LOSS naming the tensor when the server sent what this client
// cannot represent: an unknown kind, layout or datatype, or bytes unlike shape x datatype.
absl::StatusOr<io::NamedTensor> FromProto(const v1::Tensor& tensor);
absl::StatusOr<TensorReport> ReportFromProto(const v1::TensorReport& report);

class Client {
 public:
  // `target` is a gRPC target such as "127.0.0.1:50051" (plaintext unless options.tls is
  // enabled). Fails with INVALID_ARGUMENT on bad options or unreadable TLS files.
  static absl::StatusOr<std::unique_ptr<Client>> Connect(const std::string& target,
                                                         const ClientOptions& options = {});
  // Waits for the async calls still running to finish; never destroy a Client from its own
  // callback.
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Compresses every tensor with `spec` (e.g. "zstd(3)").
  absl::StatusOr<CompressResult> Compress(absl::string_view spec,
                                          absl::Span<const io::NamedTensor> tensors);

  // Asynchronous Compress: returns at once; `done` runs exactly once, on a gRPC thread, with
  // what Compress would have returned (retries included). `tensors` are copied into the
  // request before the call returns. `done` must not block for long. The Client must outlive
  // every pending call.
  using CompressCallback = std::function<void(absl::StatusOr<CompressResult>)>;
  void CompressAsync(absl::string_view spec, absl::Span<const io::NamedTensor> tensors,
                     CompressCallback done);

  // Decodes frames; each returned tensor is checked against its shape and dtype.
  absl::StatusOr<io::KvCache> Decompress(absl::Span<const FrameRef> frames);
  absl::StatusOr<io::KvCache> Decompress(absl::Span<const absl::Span<const uint8_t>> frames);
  // Asynchronous Decompress, as CompressAsync (the frames are copied before it returns).
  using DecompressCallback = std::function<void(absl::StatusOr<io::KvCache>)>;
  void DecompressAsync(absl::Span<const FrameRef> frames, DecompressCallback done);

  // Evaluates every codec in `specs` on every tensor: sizes, ratios, timings, errors.
  absl::StatusOr<std::vector<CodecAnalysis>> Analyze(absl::Span<const std::string> specs,
                                                     absl::Span<const io::NamedTensor> tensors);

  // The full Analyze: sweeps, K/V thresholds, budget, sampling and RoPE check as set in
  // `request`; `tensors` are appended to it. Returns the recommendation with every verdict.
  absl::StatusOr<v1::AnalyzeResponse> Analyze(v1::AnalyzeRequest request,
                                              absl::Span<const io::NamedTensor> tensors);

  // The server's codec catalogue: every stage, preset and policy its specs may name.
  absl::StatusOr<std::vector<CatalogueEntry>> ListCodecs();

  // grpc.health.v1.Health/Check for `service` ("" is the whole server). OK when SERVING;
  // UNAVAILABLE naming the state otherwise.
  absl::Status Health(const std::string& service = "");

  // Shared memory. OpenSharedMemory connects to the server's shared-memory socket
  // (kvcomp-server --shm-socket); the session lasts as long as this Client (or until
  // CloseSharedMemory), and the server releases the regions registered through it when it ends.
  absl::Status OpenSharedMemory(const std::string& socket_path);
  void CloseSharedMemory();
  // Passes `region`'s memfd to the server and registers bytes [offset, offset + byte_size) of it
  // (byte_size 0: to the end) under region.name().
  absl::Status RegisterRegion(const SharedMemoryRegion& region, uint64_t offset = 0,
                              uint64_t byte_size = 0);
  // Unregisters the region `name` (empty: every region of this client).
  absl::Status UnregisterRegion(const std::string& name);
  absl::StatusOr<std::vector<RegionInfo>> RegionStatus(const std::string& name = "");

  // Compress of tensors in regions, the frames written into `output` (a range of a region,
  // which may not overlap the inputs): one unary call, whatever the size, since only names and
  // offsets travel. `block_tokens` > 0 cuts tensors of more tokens into token blocks of that
  // many, each its own frame, so that the server spreads one big tensor over its workers.
  // A frame that does not fit: RESOURCE_EXHAUSTED naming the tensor and the room it needed.
  absl::StatusOr<ShmCompressResult> CompressShm(absl::string_view spec,
                                                absl::Span<const ShmTensor> tensors,
                                                const RegionSlice& output,
                                                uint64_t block_tokens = 0);
  // Decompress of frames in regions into `output`.
  absl::StatusOr<std::vector<ShmDecompressed>> DecompressShm(absl::Span<const ShmFrame> frames,
                                                             const RegionSlice& output);

  const std::string& target() const { return target_; }
  const ClientOptions& options() const { return options_; }
  // The effective stream threshold (options().stream_threshold_bytes, or its default).
  int64_t stream_threshold_bytes() const;

 private:
  struct Impl;
  Client(std::string target, ClientOptions options, std::unique_ptr<Impl> impl);
  std::string target_;
  ClientOptions options_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kvcomp::client

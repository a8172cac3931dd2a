#include "client/cli/common.h"

#include <pthread.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/io/file_util.h"

namespace kvcomp::cli {

void AddTargetFlags(CLI::App* app, std::string* address, std::string* lb_policy) {
  app->add_option("--server", *address,
                  "kvcomp-server address: HOST:PORT, or any gRPC target such as "
                  "ipv4:127.0.0.1:P1,127.0.0.1:P2 or dns:///kvcomp:50051")
      ->capture_default_str();
  app->add_option("--lb-policy", *lb_policy,
                  "gRPC load balancing over the target's addresses (default pick_first)")
      ->check(CLI::IsMember({"pick_first", "round_robin"}));
}

void AddServerFlags(CLI::App* app, ServerFlags* flags) {
  AddTargetFlags(app, &flags->address, &flags->lb_policy);
  app->add_option("--timeout", flags->timeout_seconds, "deadline of each RPC, in seconds")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app->add_option("--max-message-mib", flags->max_message_mib,
                  "largest gRPC message sent or received, in MiB (the server's default is 64)")
      ->capture_default_str()
      ->check(CLI::Range(1, 2047));
  app->add_option("--stream-threshold-mib", flags->stream_threshold_mib,
                  "compress/decompress requests above this many MiB stream "
                  "(CompressStream/DecompressStream) in chunks within it, big tensors cut into "
                  "token blocks; 0: min(--max-message-mib, 32) less 1/16 (the server holds about "
                  "two chunks of a stream)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 2047.0));
  app->add_option("--attempts", flags->attempts,
                  "tries per RPC; UNAVAILABLE (only) is retried with exponential backoff")
      ->capture_default_str()
      ->check(CLI::Range(1, 20));
  app->add_flag("--tls", flags->tls, "connect with TLS (system roots unless --tls-ca)");
  app->add_option("--tls-ca", flags->tls_ca, "PEM root certificate(s) to verify the server")
      ->check(CLI::ExistingFile);
  app->add_option("--tls-cert", flags->tls_cert, "PEM client certificate chain (mutual TLS)")
      ->check(CLI::ExistingFile);
  app->add_option("--tls-key", flags->tls_key, "PEM client private key (mutual TLS)")
      ->check(CLI::ExistingFile);
  app->add_option("--tls-server-name", flags->tls_server_name,
                  "name expected in the server certificate, when not the --server host");
}

absl::StatusOr<std::unique_ptr<client::Client>> Connect(
    const ServerFlags& flags, std::function<void(size_t, size_t)> on_chunk) {
  client::ClientOptions options;
  options.timeout = absl::Seconds(flags.timeout_seconds);
  options.max_message_bytes = flags.max_message_mib << 20;
  options.stream_threshold_bytes = static_cast<int64_t>(flags.stream_threshold_mib * 1048576.0);
  options.retry.max_attempts = flags.attempts;
  options.tls.enabled = flags.tls || !flags.tls_ca.empty() || !flags.tls_cert.empty() ||
                        !flags.tls_key.empty() || !flags.tls_server_name.empty();
  options.tls.root_ca_path = flags.tls_ca;
  options.tls.cert_chain_path = flags.tls_cert;
  options.tls.private_key_path = flags.tls_key;
  options.tls.server_name_override = flags.tls_server_name;
  options.load_balancing_policy = flags.lb_policy;
  options.on_chunk = std::move(on_chunk);
  return client::Client::Connect(flags.address, options);
}

void RemoveTemporariesOnInterrupt() {
  static sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&signals, s);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::thread([] {
    int signal = 0;
    if (sigwait(&signals, &signal) != 0) return;
    const int removed = io::RemovePendingTemporariesForExit();
    std::fprintf(stderr, "kvcomp: interrupted (signal %d); removed %d unfinished output(s)\n",
                 signal, removed);
    std::_Exit(128 + signal);
  }).detach();
}

int Fail(absl::string_view command, int code, const absl::Status& status) {
  std::cerr << "kvcomp " << command << ": error: " << status << "\n";
  return code;
}

std::optional<DType> ParseDTypeFlag(const std::string& text) {
  const std::string t = absl::AsciiStrToLower(text);
  if (t == "fp16" || t == "f16" || t == "float16") return DType::kFP16;
  if (t == "fp32" || t == "f32" || t == "float32") return DType::kFP32;
  if (t == "bf16" || t == "bfloat16") return DType::kBF16;
  return std::nullopt;
}

std::string HumanBytes(uint64_t bytes) {
  if (bytes < 10 * 1024) return absl::StrCat(bytes, " B");
  if (bytes < 10 * 1024 * 1024) return absl::StrFormat("%.1f KiB", bytes / 1024.0);
  if (bytes < uint64_t{10} << 30) return absl::StrFormat("%.1f MiB", bytes / 1048576.0);
  return absl::StrFormat("%.2f GiB", bytes / 1073741824.0);
}

void PrintSideRecordLine(std::ostream& out, const io::SideRecord& side, uint64_t record_bytes) {
  out << absl::StrFormat("%-14s %5s %4s %5s %-14s %12d %12d %6.3fx  (tokens, cells, headers)\n",
                         "state skeleton", "", "", "", "", side.bytes.size(), record_bytes,
                         record_bytes ? static_cast<double>(side.bytes.size()) / record_bytes : 0);
}

void PrintWholeFileLine(std::ostream& out, const std::string& input, uint64_t kvc_bytes) {
  std::error_code ec;
  const uint64_t in = std::filesystem::file_size(input, ec);
  if (ec) return;
  out << absl::StrFormat("whole file: %d bytes -> %d bytes, %.3fx (every byte counted)\n", in,
                         kvc_bytes, kvc_bytes ? static_cast<double>(in) / kvc_bytes : 0.0);
}

void AddOutputFlags(CLI::App* app, bool* force, bool* quiet, absl::string_view what) {
  app->add_flag("-f,--force", *force, absl::StrCat("replace ", what, " if it exists"));
  app->add_flag("-q,--quiet", *quiet, "print nothing on success");
}

absl::StatusOr<KvcFile> ReadKvcFile(const std::string& path) {
  KvcFile f;
  auto bytes = io::ReadFileBytes(path);
  if (!bytes.ok()) return bytes.status();
  f.bytes = std::move(*bytes);
  auto side = io::ReadSideRecord(f.bytes);
  if (!side.ok()) {
    return absl::Status(side.status().code(), absl::StrCat(path, ": ", side.status().message()));
  }
  f.side = std::move(side->record);
  f.side_bytes = side->record_bytes;
  auto frames = SplitFrames(absl::MakeConstSpan(f.bytes).subspan(f.side_bytes));
  if (!frames.ok()) {
    return absl::Status(frames.status().code(),
                        absl::StrCat(path, ": ", frames.status().message()));
  }
  f.frames = std::move(*frames);
  // A state with no cells is all skeleton: its .kvc is the side record alone.
  if (f.frames.empty() && !f.side) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": holds no frames"));
  }
  uint64_t offset = f.side_bytes;
  for (size_t i = 0; i < f.frames.size(); ++i) {
    auto parsed = ParseFrame(f.frames[i]);
    if (!parsed.ok()) {
      return absl::Status(parsed.status().code(),
                          absl::StrCat(path, ": frame ", i, " at offset ", offset, ": ",
                                       parsed.status().message()));
    }
    f.headers.push_back(std::move(*parsed));
    f.offsets.push_back(offset);
    offset += f.frames[i].size();
  }
  return f;
}

void PrintReportTable(std::ostream& out, const std::vector<client::TensorReport>& reports) {
  // Lossy rows carry their measured error (cosine, MAE, SNR); lossless rows say "exact".
  out << absl::StrFormat("%-14s %5s %4s %5s %-14s %12s %12s %7s %9s %9s %6s  %s\n", "tensor",
                         "layer", "kind", "dtype", "shape", "raw_bytes", "comp_bytes", "ratio",
                         "cosine", "mae", "snr_dB", "codec");
  uint64_t raw[3] = {0, 0, 0}, comp[3] = {0, 0, 0};  // K, V, KV
  for (const client::TensorReport& r : reports) {
    const std::string layer = r.layer >= 0 ? absl::StrCat(r.layer) : "-";
    std::string shape = "[";
    for (size_t i = 0; i < r.shape.size(); ++i) absl::StrAppend(&shape, i ? "," : "", r.shape[i]);
    shape += "]";
    const double ratio =
        r.compressed_bytes ? static_cast<double>(r.raw_bytes) / r.compressed_bytes : 0.0;
    const bool lossy = r.error.has_value();
    out << absl::StrFormat("%-14s %5s %4s %5s %-14s %12d %12d %6.3fx %9s %9s %6s  %s\n", r.name,
                           layer, KindName(r.kind), DTypeName(r.dtype), shape, r.raw_bytes,
                           r.compressed_bytes, ratio,
                           lossy ? absl::StrFormat("%.6f", r.error->cosine) : "exact",
                           lossy ? absl::StrFormat("%.2e", r.error->mae) : "0",
                           lossy ? absl::StrFormat("%.1f", r.error->snr_db) : "inf", r.codec);
    if (r.kind == Kind::kKey || r.kind == Kind::kValue) {
      const int k = r.kind == Kind::kKey ? 0 : 1;
      raw[k] += r.raw_bytes;
      comp[k] += r.compressed_bytes;
    }
    raw[2] += r.raw_bytes;
    comp[2] += r.compressed_bytes;
  }
  static constexpr const char* kLabels[] = {"K total", "V total", "KV total"};
  for (int k = 0; k < 3; ++k) {
    if (k < 2 && raw[k] == 0) continue;
    const double ratio = comp[k] ? static_cast<double>(raw[k]) / comp[k] : 0.0;
    out << absl::StrFormat(
        "%-14s %5s %4s %5s %-14s %12d %12d %6.3fx %9s %9s %6s  (weighted: sum raw / sum "
        "compressed)\n",
        kLabels[k], "", "", "", "", raw[k], comp[k], ratio, "", "", "");
  }
}

}  // namespace kvcomp::cli

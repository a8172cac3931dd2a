// Shared pieces of the kvcomp CLI subcommands: exit codes, server flags, report tables.
#pragma once

#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "absl/status/statusor.h"
#include "client/io/kvc_side.h"
#include "client/kvcomp_client.h"
#include "core/kvcomp/frame.h"

namespace kvcomp::cli {

// Exit codes scripts can rely on (also listed in `kvcomp --help`).
enum ExitCode : int {
  kExitOk = 0,
  kExitUsage = 1,   // bad command line
  kExitInput = 2,   // unreadable or malformed input, or the output cannot be written
  kExitServer = 3,  // the server or the RPC failed, or the server rejected the request
};

inline constexpr char kExitCodesHelp[] =
    "Exit codes:\n"
    "  0  success\n"
    "  1  usage error (bad or missing arguments)\n"
    "  2  input/output error (unreadable or malformed input, output not writable)\n"
    "  3  server error (unreachable, deadline exceeded, the server rejected the request, or\n"
    "     kvcomp load saw a failed call)\n";

// A subcommand: registers its options on `root`, and runs once parsing has succeeded.
struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;
};

Command AddCompressCommand(CLI::App& root);
Command AddDecompressCommand(CLI::App& root);
Command AddInfoCommand(CLI::App& root);
Command AddHealthCommand(CLI::App& root);
Command AddGenerateCommand(CLI::App& root);
Command AddAnalyzeCommand(CLI::App& root);
Command AddBenchCommand(CLI::App& root);
Command AddLoadCommand(CLI::App& root);
Command AddCodecsCommand(CLI::App& root);

struct ServerFlags {
  std::string address = "127.0.0.1:50051";
  double timeout_seconds = 120;
  int max_message_mib = 512;
  double stream_threshold_mib = 0;  // 0: derived from max_message_mib (client library default)
  int attempts = 4;                 // tries per RPC; retried on UNAVAILABLE only
  std::string tls_ca;               // any of the TLS flags turns TLS on
  std::string tls_cert;
  std::string tls_key;
  std::string tls_server_name;
  bool tls = false;
  std::string lb_policy;  // empty: gRPC's default (pick_first)
};
// --server and --lb-policy, for commands that make their own channels (kvcomp load).
void AddTargetFlags(CLI::App* app, std::string* address, std::string* lb_policy);
void AddServerFlags(CLI::App* app, ServerFlags* flags);
// `on_chunk`: see ClientOptions::on_chunk (kvcomp compress/decompress drive their progress bar
// with it).
absl::StatusOr<std::unique_ptr<client::Client>> Connect(
    const ServerFlags& flags, std::function<void(size_t, size_t)> on_chunk = nullptr);

// Makes SIGINT, SIGTERM and SIGHUP end the process through one thread that first removes the
// temporary files and folders of outputs not yet complete (io::RemovePendingTemporariesForExit),
// then exits 128 + the signal. Call it first in main, before any thread starts.
void RemoveTemporariesOnInterrupt();

// Prints "kvcomp <cmd>: error: <status>" to stderr and returns `code`.
int Fail(absl::string_view command, int code, const absl::Status& status);

// "fp16" / "fp32" / "bf16" (any case, also "FP16"...).
std::optional<DType> ParseDTypeFlag(const std::string& text);

// The per-tensor table, then the weighted K, V and KV totals (sum raw / sum compressed).
void PrintReportTable(std::ostream& out, const std::vector<client::TensorReport>& reports);

std::string HumanBytes(uint64_t bytes);

// After the table of a llama.cpp state: its side record (the skeleton: tokens, cells, headers),
// raw and as stored; then the whole file against the whole .kvc, every byte counted.
void PrintSideRecordLine(std::ostream& out, const io::SideRecord& side, uint64_t record_bytes);
void PrintWholeFileLine(std::ostream& out, const std::string& input, uint64_t kvc_bytes);

// -f/--force and -q/--quiet, shared by the commands that write files.
void AddOutputFlags(CLI::App* app, bool* force, bool* quiet, absl::string_view what);

// A .kvc file split into its side record (a llama.cpp state's skeleton, if it came from one)
// and frames, each header parsed (payloads are not decoded). Errors name the file, and the
// frame index and offset when one frame is bad.
struct KvcFile {
  std::vector<uint8_t> bytes;
  std::optional<io::SideRecord> side;
  uint64_t side_bytes = 0;                        // the record's size in the file
  std::vector<absl::Span<const uint8_t>> frames;  // views into `bytes`
  std::vector<ParsedFrame> headers;
  std::vector<uint64_t> offsets;
};
absl::StatusOr<KvcFile> ReadKvcFile(const std::string& path);

}  // namespace kvcomp::cli

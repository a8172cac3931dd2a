// kvcomp codecs [--json] [--server ADDR]: the codec catalogue, every stage, preset and policy a
// spec may name. Offline it lists what this CLI's core knows; with --server, what that server
// supports (its ListCodecs RPC), in the same form.
#include <iostream>

#include <nlohmann/json.hpp>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/cli/common.h"
#include "core/kvcomp/catalogue.h"

namespace kvcomp::cli {
namespace {

struct CodecsFlags {
  bool json = false;
  ServerFlags server;
  CLI::Option* server_option = nullptr;
};

nlohmann::json ToJson(const std::vector<CatalogueEntry>& entries) {
  nlohmann::json out = nlohmann::json::array();
  for (const CatalogueEntry& e : entries) {
    nlohmann::json params = nlohmann::json::array();
    for (const CatalogueParam& p : e.params) {
      nlohmann::json j = {
          {"name", p.name}, {"type", p.type}, {"default", p.default_value}, {"help", p.help}};
      if (p.type == "enum") {
        j["choices"] = p.choices;
      } else {
        j["min"] = p.min;
        j["max"] = p.max;
      }
      params.push_back(std::move(j));
    }
    nlohmann::json j = {{"kind", e.kind},       {"name", e.name},
                        {"summary", e.summary}, {"exactness", e.exactness},
                        {"usage", e.usage},     {"params", std::move(params)}};
    if (e.kind == "stage") {
      j["id"] = e.id;
      j["takes_blocks"] = e.takes_blocks;
    }
    out.push_back(std::move(j));
  }
  return out;
}

std::string Range(const CatalogueParam& p) {
  if (p.type == "enum") return absl::StrCat("{", absl::StrJoin(p.choices, ", "), "}");
  if (p.type == "int") return absl::StrFormat("%.0f..%.0f", p.min, p.max);
  return absl::StrFormat("%g..%g", p.min, p.max);
}

void PrintText(const std::vector<CatalogueEntry>& entries) {
  std::string kind;
  for (const CatalogueEntry& e : entries) {
    if (e.kind != kind) {
      kind = e.kind;
      std::cout << (kind == "stage"    ? "Stages (chain with +; ID as frames carry it)"
                    : kind == "preset" ? "\nPresets"
                                       : "\nPolicies (route each tensor to one of their specs)")
                << ":\n";
    }
    const std::string id = e.kind == "stage" ? absl::StrFormat("%3d ", e.id) : "    ";
    std::cout << absl::StrFormat("%s%-12s %-9s %s%s\n", id, e.name,
                                 e.exactness == "as its arguments" ? "as args" : e.exactness,
                                 e.summary, e.takes_blocks ? " (takes Q8_0/Q4_0 blocks)" : "");
    std::cout << "                 usage: " << e.usage << "\n";
    for (const CatalogueParam& p : e.params) {
      std::cout << absl::StrFormat("                 %s: %s %s, default %s; %s\n", p.name, p.type,
                                   Range(p), p.default_value, p.help);
    }
  }
}

int RunCodecs(const CodecsFlags& f) {
  constexpr absl::string_view kCmd = "codecs";
  std::vector<CatalogueEntry> entries;
  if (f.server_option->count() > 0) {
    auto client = Connect(f.server);
    if (!client.ok()) return Fail(kCmd, kExitServer, client.status());
    auto listed = (*client)->ListCodecs();
    if (!listed.ok()) return Fail(kCmd, kExitServer, listed.status());
    entries = std::move(*listed);
  } else {
    entries = CodecCatalogue();
  }
  if (f.json) {
    std::cout << ToJson(entries).dump(2) << "\n";
  } else {
    PrintText(entries);
  }
  return kExitOk;
}

}  // namespace

Command AddCodecsCommand(CLI::App& root) {
  auto flags = std::make_shared<CodecsFlags>();
  flags->server.timeout_seconds = 10;
  CLI::App* app = root.add_subcommand(
      "codecs",
      "List every stage, preset and policy a codec spec may name: summary, parameters, "
      "defaults, lossless or lossy, stage ID. Offline by default; with --server, what that "
      "server supports");
  app->add_flag("--json", flags->json, "print JSON instead of text");
  AddServerFlags(app, &flags->server);
  flags->server_option = app->get_option("--server");
  return {app, [flags] { return RunCodecs(*flags); }};
}

}  // namespace kvcomp::cli

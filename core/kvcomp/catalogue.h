// The codec catalogue: every stage, preset and policy a spec can name, with what a user needs
// to write one. `kvcomp codecs` prints it (offline, or from a server's ListCodecs RPC, which
// returns the same entries), so what a server supports is discoverable.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kvcomp {

struct CatalogueParam {
  std::string name;
  std::string type;                  // "int", "float" or "enum"
  std::string default_value;         // as a spec writes it
  double min = 0, max = 0;           // int and float only
  std::vector<std::string> choices;  // enum only
  std::string help;
};

struct CatalogueEntry {
  std::string kind;  // "stage", "preset" or "policy"
  std::string name;
  uint32_t id = 0;  // stages: the persistent ID a frame carries (docs/FORMAT.md); 0 otherwise
  std::string summary;
  std::string exactness;      // "lossless", "lossy" or "as its arguments"
  std::string usage;          // how a spec writes it, e.g. "zstd(level=3)" or "mixed(N,FIRST,REST)"
  bool takes_blocks = false;  // stages: accepts Q8_0/Q4_0 block streams
  std::vector<CatalogueParam> params;
};

// Stages by ID, then presets, then policies, each in registration order.
std::vector<CatalogueEntry> CodecCatalogue();

}  // namespace kvcomp

// The header rules of docs/ARCHITECTURE.md ("Headers"), checked on every source file of the
// repository: one include root, a core that includes only itself, public headers that pull in
// no internal one, and a server and client that reach stages and presets only through the
// registry.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/match.h"

namespace kvcomp {
namespace {

namespace fs = std::filesystem;

struct Include {
  std::string file;    // the including file, from the repository root
  std::string target;  // what it includes, as written
};

// Every `#include "..."` of the repository's C++ sources (build trees left out).
std::vector<Include> WalkSources() {
  const fs::path root = KVCOMP_SOURCE_DIR;
  const std::regex line(R"re(^\s*#\s*include\s+"([^"]+)")re");
  std::vector<Include> out;
  for (const char* top : {"core", "server", "client", "proto", "bench", "tests"}) {
    for (const fs::directory_entry& e : fs::recursive_directory_iterator(root / top)) {
      const std::string ext = e.path().extension().string();
      if (!e.is_regular_file() || (ext != ".h" && ext != ".cc")) continue;
      std::ifstream in(e.path());
      std::string text;
      std::smatch m;
      while (std::getline(in, text)) {
        if (std::regex_search(text, m, line)) {
          out.push_back({fs::relative(e.path(), root).string(), m[1]});
        }
      }
    }
  }
  return out;
}

// Walked once for all the tests below.
const std::vector<Include>& ProjectIncludes() {
  static const std::vector<Include>* const includes = new std::vector<Include>(WalkSources());
  return *includes;
}

bool IsGenerated(const std::string& target) {
  return absl::EndsWith(target, ".pb.h") || absl::StartsWith(target, "readme_example_");
}

bool IsThirdParty(const std::string& target) {
  for (const char* prefix : {"absl/", "gtest/", "gmock/", "benchmark/"}) {
    if (absl::StartsWith(target, prefix)) return true;
  }
  return false;
}

// The core's API for an embedder; every other header under core/kvcomp/ is internal.
bool IsPublicCoreHeader(const std::string& path) {
  if (path == "core/kvcomp/analysis/analyzer.h" || path == "core/kvcomp/synth/llama_synth.h") {
    return true;
  }
  return absl::StartsWith(path, "core/kvcomp/") && path.find('/', 12) == std::string::npos;
}

TEST(IncludeRulesTest, TheSourcesAreFoundWhereExpected) {
  // Guards the other tests against passing on an empty walk.
  EXPECT_GT(ProjectIncludes().size(), 500u);
}

TEST(IncludeRulesTest, EveryProjectIncludeIsAPathFromTheRepositoryRoot) {
  for (const Include& inc : ProjectIncludes()) {
    if (IsGenerated(inc.target) || IsThirdParty(inc.target)) continue;
    EXPECT_TRUE(fs::is_regular_file(fs::path(KVCOMP_SOURCE_DIR) / inc.target))
        << inc.file << " includes \"" << inc.target << "\", not a path from the repository root";
  }
}

TEST(IncludeRulesTest, TheCoreIncludesOnlyItself) {
  for (const Include& inc : ProjectIncludes()) {
    if (!absl::StartsWith(inc.file, "core/") || IsThirdParty(inc.target)) continue;
    EXPECT_TRUE(absl::StartsWith(inc.target, "core/")) << inc.file << " includes " << inc.target;
  }
}

TEST(IncludeRulesTest, PublicHeadersIncludeNoInternalOne) {
  for (const Include& inc : ProjectIncludes()) {
    if (!IsPublicCoreHeader(inc.file) || !absl::EndsWith(inc.file, ".h")) continue;
    if (IsThirdParty(inc.target)) continue;
    EXPECT_TRUE(IsPublicCoreHeader(inc.target))
        << "public " << inc.file << " includes internal " << inc.target;
  }
}

TEST(IncludeRulesTest, ServerAndClientReachStagesAndPresetsOnlyThroughTheRegistry) {
  for (const Include& inc : ProjectIncludes()) {
    const bool service_side = absl::StartsWith(inc.file, "server/") ||
                              absl::StartsWith(inc.file, "client/") ||
                              absl::StartsWith(inc.file, "proto/");
    if (!service_side || !absl::StartsWith(inc.target, "core/")) continue;
    EXPECT_TRUE(IsPublicCoreHeader(inc.target) ||
                absl::StartsWith(inc.target, "core/kvcomp/internal/"))
        << inc.file << " includes " << inc.target;
  }
}

}  // namespace
}  // namespace kvcomp

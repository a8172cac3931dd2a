// docs/FORMAT.md's "Stage IDs" table is the format's promise; the registry (whose stages take
// their IDs from kvcomp/stage_ids.h) is what the code writes. They must name the same stages.
#include "core/kvcomp/stage_ids.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>

#include "core/kvcomp/registry.h"

namespace kvcomp {
namespace {

// The rows `| id | `name` | ...` of the section "## Stage IDs", as id -> name.
std::map<int, std::string> FormatMdStageIds() {
  std::ifstream f(KVCOMP_FORMAT_MD);
  EXPECT_TRUE(f.good()) << "cannot read " << KVCOMP_FORMAT_MD;
  std::map<int, std::string> rows;
  const std::regex row(R"(^\| (\d+) \| `([a-z0-9_]+)` \|)");
  bool in_section = false;
  for (std::string line; std::getline(f, line);) {
    if (line.rfind("## ", 0) == 0) in_section = line == "## Stage IDs";
    std::smatch m;
    if (in_section && std::regex_search(line, m, row)) {
      const int id = std::stoi(m[1]);
      EXPECT_EQ(rows.count(id), 0u) << "FORMAT.md lists ID " << id << " twice";
      rows[id] = m[2];
    }
  }
  return rows;
}

TEST(StageIdsTest, FormatMdTableAndRegistryNameTheSameStages) {
  const std::map<int, std::string> documented = FormatMdStageIds();
  ASSERT_FALSE(documented.empty()) << "no Stage IDs table in " << KVCOMP_FORMAT_MD;
  std::map<int, std::string> registered;
  for (const auto& s : StageRegistry::Get().all()) registered[s->id] = std::string(s->name);
  EXPECT_EQ(documented, registered);
}

TEST(StageIdsTest, EveryStageSitsInTheRangeOfItsKind) {
  for (const auto& s : StageRegistry::Get().all()) {
    if (s->lossless || s->id == stage_id::kCast) {  // cast: the documented exception
      EXPECT_GE(s->id, stage_id::kFirstLossless) << s->name;
      EXPECT_LE(s->id, stage_id::kLastLossless) << s->name;
    } else {
      EXPECT_GE(s->id, stage_id::kFirstLossy) << s->name;
      EXPECT_LE(s->id, stage_id::kLastLossy) << s->name;
    }
  }
}

}  // namespace
}  // namespace kvcomp

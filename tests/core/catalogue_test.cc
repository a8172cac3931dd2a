// The codec catalogue lists every registered stage, preset and policy, each usable as written,
// and the README's spec table mentions every one of them.
#include "core/kvcomp/catalogue.h"

#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>
#include <string>

#include "core/kvcomp/codec.h"
#include "core/kvcomp/preset.h"
#include "core/kvcomp/registry.h"

namespace kvcomp {
namespace {

TEST(CatalogueTest, ListsEveryRegisteredStagePresetAndPolicyOnce) {
  const std::vector<CatalogueEntry> all = CodecCatalogue();
  std::set<std::string> names;
  for (const CatalogueEntry& e : all) {
    EXPECT_TRUE(names.insert(e.name).second) << e.name << " listed twice";
    EXPECT_FALSE(e.summary.empty()) << e.name;
    EXPECT_FALSE(e.usage.empty()) << e.name;
    EXPECT_TRUE(e.exactness == "lossless" || e.exactness == "lossy" ||
                e.exactness == "as its arguments")
        << e.name << ": " << e.exactness;
  }
  EXPECT_EQ(all.size(), StageRegistry::Get().all().size() + PresetRegistry::Get().all().size());
  for (const auto& s : StageRegistry::Get().all()) {
    EXPECT_EQ(names.count(std::string(s->name)), 1u) << s->name;
  }
  for (const PresetInfo& p : PresetRegistry::Get().all()) {
    EXPECT_EQ(names.count(std::string(p.name)), 1u) << p.name;
  }
}

TEST(CatalogueTest, StagesCarryTheirIdsAndSchemasAndTheirUsageParses) {
  for (const CatalogueEntry& e : CodecCatalogue()) {
    if (e.kind != "stage") continue;
    const StageInfo* info = StageRegistry::Get().FindByName(e.name);
    ASSERT_NE(info, nullptr) << e.name;
    EXPECT_EQ(e.id, info->id);
    EXPECT_EQ(e.exactness, info->lossless ? "lossless" : "lossy");
    ASSERT_EQ(e.params.size(), info->params.size()) << e.name;
    // The usage spells every parameter at its default: a spec that works as it is.
    auto codec = MakeCodec(e.usage);
    EXPECT_TRUE(codec.ok()) << e.usage << ": " << codec.status();
  }
}

TEST(CatalogueTest, LosslessPresetsAreMarkedSo) {
  for (const CatalogueEntry& e : CodecCatalogue()) {
    if (e.name == "lossless" || e.name == "lossless-max") {
      EXPECT_EQ(e.exactness, "lossless");
    }
    if (e.name == "bounded") {
      EXPECT_EQ(e.exactness, "lossy");
    }
    if (e.name == "mixed" || e.name == "kv" || e.name == "layers") {
      EXPECT_EQ(e.kind, "policy");
    }
  }
}

// Every name in backticks in the table under README.md's "## Codec specs".
std::set<std::string> ReadmeSpecTableNames() {
  std::ifstream f(KVCOMP_README_MD);
  EXPECT_TRUE(f.good()) << "cannot read " << KVCOMP_README_MD;
  std::set<std::string> names;
  const std::regex code("`([^`]*)`"), word("[a-z][a-z0-9_-]*");
  bool in_section = false;
  for (std::string line; std::getline(f, line);) {
    if (line.rfind("## ", 0) == 0) in_section = line == "## Codec specs";
    if (!in_section || line.rfind("|", 0) != 0) continue;
    for (std::sregex_iterator c(line.begin(), line.end(), code), end; c != end; ++c) {
      const std::string span = (*c)[1];
      for (std::sregex_iterator w(span.begin(), span.end(), word); w != end; ++w) {
        names.insert(w->str());
      }
    }
  }
  return names;
}

TEST(CatalogueTest, TheReadmeSpecTableMentionsEveryCodec) {
  const std::set<std::string> documented = ReadmeSpecTableNames();
  ASSERT_FALSE(documented.empty()) << "no spec table under '## Codec specs' in README.md";
  for (const CatalogueEntry& e : CodecCatalogue()) {
    EXPECT_EQ(documented.count(e.name), 1u)
        << "README.md's spec table does not mention the " << e.kind << " `" << e.name << "`";
  }
}

}  // namespace
}  // namespace kvcomp

// Replays every checked-in input under tests/fuzz/regressions/<target>/ through its fuzz
// target, in every build (and so under the sanitizer build too). Each input is one a fuzzer
// once broke, or a hand-made input for a contract worth pinning (see the README there).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>

#include "tests/fuzz/fuzz_input.h"
#include "tests/fuzz/targets.h"
#ifdef KVCOMP_FUZZ_SERVER
#include "tests/fuzz/server_target.h"
#include "tests/fuzz/service_target.h"
#endif

namespace kvcomp::fuzz {

// Names the target in gtest's messages.
void PrintTo(const Target& t, std::ostream* os) { *os << t.name; }

namespace {

namespace fs = std::filesystem;

struct CheckFailure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] void Throw(const std::string& what) { throw CheckFailure(what); }

// The core targets, and the server's when this build has the server.
std::vector<Target> AllTargets() {
  std::vector<Target> out(std::begin(kTargets), std::end(kTargets));
#ifdef KVCOMP_FUZZ_SERVER
  out.push_back({"server", FuzzServerRequest});
  out.push_back({"service", FuzzServiceSequence});
#endif
  return out;
}

std::vector<fs::path> InputsOf(const std::string& target) {
  std::vector<fs::path> out;
  const fs::path dir = fs::path(KVCOMP_FUZZ_REGRESSIONS) / target;
  if (!fs::is_directory(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_regular_file()) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

class FuzzRegressionTest : public ::testing::TestWithParam<Target> {};

TEST_P(FuzzRegressionTest, EveryCheckedInInputPasses) {
  SetFailureHandler(Throw);
  const auto inputs = InputsOf(GetParam().name);
  for (const auto& path : inputs) {
    std::ifstream f(path, std::ios::binary);
    ASSERT_TRUE(f) << path;
    const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), {});
    try {
      GetParam().run(bytes);
    } catch (const CheckFailure& e) {
      ADD_FAILURE() << path.filename() << ": " << e.what();
    }
  }
  SetFailureHandler(nullptr);
  RecordProperty("inputs", static_cast<int>(inputs.size()));
}

INSTANTIATE_TEST_SUITE_P(Targets, FuzzRegressionTest, ::testing::ValuesIn(AllTargets()),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(FuzzRegressionLayoutTest, EveryFolderNamesATarget) {
  for (const auto& e : fs::directory_iterator(KVCOMP_FUZZ_REGRESSIONS)) {
    if (!e.is_directory()) continue;
    const auto name = e.path().filename().string();
    const bool known = name == "server" || name == "service" ||  // builds with the server only
                       std::any_of(std::begin(kTargets), std::end(kTargets),
                                   [&](const Target& t) { return name == t.name; });
    EXPECT_TRUE(known) << "tests/fuzz/regressions/" << name << " is not a fuzz target's name";
  }
}

#ifdef KVCOMP_FUZZ_SERVER
// fuzz_server's shared-memory seeds, replayed in every build: those that name regions within
// bounds are served (their frames and tensors checked against the regions' bytes and windows),
// and each broken bound is refused with a client error, never a crash or INTERNAL.
TEST(FuzzServerShmTest, RegionSeedsAreServedOrRefusedAsClientErrors) {
  SetFailureHandler(Throw);
  const uint64_t served_before = ShmCallsServed();
  const std::vector<std::vector<uint8_t>> seeds = ShmSeeds();
  for (size_t i = 0; i < seeds.size(); ++i) {
    try {
      FuzzServerRequest(seeds[i]);
    } catch (const CheckFailure& e) {
      ADD_FAILURE() << "shm seed " << i << ": " << e.what();
    }
  }
  SetFailureHandler(nullptr);
  // 4 codecs into a window, token blocks, frames in the reply, output beside the inputs, and
  // tensors decoded into a window.
  EXPECT_EQ(ShmCallsServed() - served_before, 8u);
}
#endif

}  // namespace
}  // namespace kvcomp::fuzz

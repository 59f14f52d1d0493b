// Replays every simulation regression script in testdata/regress/ (passed
// as arguments) and compares each command's output with the expected text
// in the script (sim/sim_scenario.h; the commands are documented in
// testdata/regress/README.md).
//
// After an intended behaviour change, rewrite the expected text and review
// the diff:
//   bazel run //sim:regress_test -- --rewrite
// (or BLIXARD_REWRITE=1 with bazel run; rewriting needs
// BUILD_WORKSPACE_DIRECTORY, which `bazel run` sets, to find the sources).
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "sim/sim_scenario.h"

namespace blixard::sim {
namespace {

std::vector<std::string>* g_files = nullptr;
bool g_rewrite = false;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(RegressTest, AllScripts) {
  ASSERT_NE(g_files, nullptr);
  size_t scripts = 0;
  for (const std::string& path : *g_files) {
    if (!absl::EndsWith(path, ".txt")) continue;
    ++scripts;
    SCOPED_TRACE(path);
    absl::StatusOr<SimScriptRun> run = RunSimScript(path, ReadFile(path));
    ASSERT_TRUE(run.ok()) << run.status().message();
    ASSERT_FALSE(run->cases.empty()) << path << ": empty script";
    bool ran = false;
    for (size_t i = 0; i < run->cases.size(); ++i) {
      ran |= run->cases[i].command == "run";
      if (!g_rewrite) {
        EXPECT_EQ(run->outputs[i], run->cases[i].expected)
            << path << ":" << run->cases[i].line << ": " << run->cases[i].command;
      }
    }
    EXPECT_TRUE(ran) << path << ": no run command, nothing is checked";
    if (g_rewrite) {
      const char* ws = std::getenv("BUILD_WORKSPACE_DIRECTORY");
      ASSERT_NE(ws, nullptr) << "rewrite needs `bazel run`";
      std::ofstream out(std::string(ws) + "/" + path);
      out << raft::testing::FormatScenario(run->cases, run->outputs, "");
    }
  }
  // A lost glob or an emptied directory must not pass as "nothing failed".
  EXPECT_GE(scripts, 1u) << "no scripts in testdata/regress/";
}

}  // namespace
}  // namespace blixard::sim

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  static std::vector<std::string> files;
  const char* env = std::getenv("BLIXARD_REWRITE");
  blixard::sim::g_rewrite = env != nullptr && std::string(env) == "1";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--rewrite") {
      blixard::sim::g_rewrite = true;
    } else {
      files.push_back(a);
    }
  }
  blixard::sim::g_files = &files;
  return RUN_ALL_TESTS();
}

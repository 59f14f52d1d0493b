// Runs every scenario script in testdata/raft/ (passed as arguments) and
// compares each command's output with the golden text in the script.
//
// Rewrite the golden text after an intended change:
//   bazel run //sim:raft_scenario_test -- --rewrite
// (or BLIXARD_REWRITE=1 with bazel run). Rewriting needs
// BUILD_WORKSPACE_DIRECTORY, which `bazel run` sets, to find the sources.
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "core/raft/testing/scenario.h"
#include "gtest/gtest.h"

namespace blixard::raft::testing {
namespace {

std::vector<std::string>* g_files = nullptr;
bool g_rewrite = false;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(ScenarioTest, AllScripts) {
  ASSERT_NE(g_files, nullptr);
  ASSERT_GE(g_files->size(), 1u) << "no scripts given";
  size_t scripts = 0;
  for (const std::string& path : *g_files) {
    if (!absl::EndsWith(path, ".txt")) continue;
    ++scripts;
    SCOPED_TRACE(path);
    std::string error;
    std::vector<ScenarioCase> cases = ParseScenario(ReadFile(path), &error);
    ASSERT_TRUE(error.empty()) << error;
    ASSERT_FALSE(cases.empty()) << "empty script";
    ScenarioRunner runner;
    std::vector<std::string> outputs;
    for (const ScenarioCase& c : cases) {
      outputs.push_back(runner.Run(c.command));
      if (!g_rewrite) {
        EXPECT_EQ(outputs.back(), c.expected)
            << path << ":" << c.line << ": " << c.command;
      }
    }
    if (g_rewrite) {
      const char* ws = std::getenv("BUILD_WORKSPACE_DIRECTORY");
      ASSERT_NE(ws, nullptr) << "rewrite needs `bazel run`";
      std::ofstream out(std::string(ws) + "/" + path);
      out << FormatScenario(cases, outputs, "");
    }
  }
  // The issue asks for at least 40 scripts; a lost glob must not pass.
  EXPECT_GE(scripts, 40u);
}

}  // namespace
}  // namespace blixard::raft::testing

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  static std::vector<std::string> files;
  const char* env = std::getenv("BLIXARD_REWRITE");
  blixard::raft::testing::g_rewrite = env != nullptr && std::string(env) == "1";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--rewrite") {
      blixard::raft::testing::g_rewrite = true;
    } else {
      files.push_back(a);
    }
  }
  blixard::raft::testing::g_files = &files;
  return RUN_ALL_TESTS();
}

#include "sim/golden_scripts.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace blixard::sim {
namespace {

GoldenScriptArgs& Args() {
  static GoldenScriptArgs args;
  return args;
}

}  // namespace

const GoldenScriptArgs& GoldenScripts() { return Args(); }

std::string ReadScript(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void CheckOrRewriteScript(const std::string& path, const std::vector<raft::testing::ScenarioCase>& cases,
                          const std::vector<std::string>& outputs) {
  ASSERT_EQ(outputs.size(), cases.size()) << path;
  if (!GoldenScripts().rewrite) {
    for (size_t i = 0; i < cases.size(); ++i) {
      EXPECT_EQ(outputs[i], cases[i].expected)
          << path << ":" << cases[i].line << ": " << cases[i].command;
    }
    return;
  }
  const char* ws = std::getenv("BUILD_WORKSPACE_DIRECTORY");
  ASSERT_NE(ws, nullptr) << "rewrite needs `bazel run`";
  std::ofstream out(std::string(ws) + "/" + path);
  out << raft::testing::FormatScenario(cases, outputs, "");
}

}  // namespace blixard::sim

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  blixard::sim::GoldenScriptArgs& args = blixard::sim::Args();
  const char* env = std::getenv("BLIXARD_REWRITE");
  args.rewrite = env != nullptr && std::string(env) == "1";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--rewrite") {
      args.rewrite = true;
    } else if (absl::EndsWith(arg, ".txt")) {
      args.scripts.push_back(arg);
    }
  }
  return RUN_ALL_TESTS();
}

// The scenario-script interpreter: a small text language that drives a
// testing::Cluster step by step and prints what happened (Readys, messages,
// log lines), in the style of etcd-raft's data-driven interaction tests.
// The language is documented in testdata/raft/README.md.
//
// Pure: no files, no clocks. scenario_test.cc reads the scripts, compares the
// output with the golden text in the files and rewrites them on request.
#ifndef BLIXARD_CORE_RAFT_TESTING_SCENARIO_H_
#define BLIXARD_CORE_RAFT_TESTING_SCENARIO_H_

#include <memory>
#include <string>
#include <vector>

#include "core/base/logger.h"
#include "core/raft/testing/cluster.h"
#include "core/raft/testing/scenario_format.h"

namespace blixard::raft::testing {

class ScenarioRunner {
 public:
  ScenarioRunner();
  // Runs one command line; returns its output (never empty: "ok" at least).
  // A bad command returns "error: ..." as its output.
  std::string Run(const std::string& command);

 private:
  std::string Dispatch(const std::vector<std::string>& args);
  std::string TakeLogs();
  std::string ProcessReady(uint64_t id);
  std::string Deliver(uint64_t id, const std::vector<size_t>& drop);
  std::string Stabilize(const std::vector<uint64_t>& ids);
  std::string DescribeReady(uint64_t id, const Ready& rd);
  std::string RaftLogOf(uint64_t id);
  std::string StatusOf(uint64_t id);

  CapturingLogger logger_;
  LogLevel level_ = LogLevel::kInfo;
  std::unique_ptr<Cluster> cluster_;
  std::vector<uint64_t> bootstrap_voters_;
  std::string out_;
};

}  // namespace blixard::raft::testing

#endif  // BLIXARD_CORE_RAFT_TESTING_SCENARIO_H_

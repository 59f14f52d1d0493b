// A simulator that cannot forgive (issue 13, point 10): a node whose store
// refused to open because of a transient error (an injected read error) is
// not left down for the rest of the run. It stops itself (a `stop` line),
// a later restart from the schedule or the liveness phase's heal tries
// again, and a quorum down only for such reasons is never excused as
// recovery_impossible, which is reserved for DATA_LOSS.
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "core/base/check.h"
#include "gtest/gtest.h"
#include "sim/checker/trace_order.h"
#include "sim/simulation.h"

namespace blixard::sim {
namespace {

SimulationOptions ThreeNodes(absl::string_view schedule) {
  SimulationOptions options;
  options.seed = 5;
  options.nodes = 3;
  options.duration_us = 10'000'000;
  absl::StatusOr<FaultSchedule> parsed = FaultSchedule::Parse(schedule);
  CHECK_OK(parsed.status());
  options.schedule = *parsed;
  options.check_trace_order = true;
  return options;
}

std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

bool Has(const std::string& line, absl::string_view part) { return absl::StrContains(line, part); }

// Two of three voters are refused at restart by read errors: without a
// retry they would be a lost quorum, and the run would be excused.
TEST(StartRefusalTest, TransientRefusalsAreRetriedAtTheHealAndNotExcused) {
  SimulationOptions options = ThreeNodes(R"(
    2000000 crash nodes=1,2
    2000000 disk_read_errors nodes=1,2 value=1000000
    3000000 restart nodes=1,2
  )");
  std::ostringstream trace;
  options.trace = &trace;
  const SimulationReport report = RunSimulation(options);
  ASSERT_EQ(report.faults.count("refused_start"), 1u) << trace.str();
  ASSERT_TRUE(report.passed) << report.failure;
  EXPECT_FALSE(report.recovery_impossible) << report.recovery_detail;
  EXPECT_EQ(report.faults.at("refused_start"), 2u) << trace.str();
  EXPECT_TRUE(CheckTraceOrder(trace.str()).ok()) << CheckTraceOrder(trace.str());

  // For n1: refused, stopped, restarted by the liveness phase, applying.
  enum { kRefused, kStopped, kRestarted, kApplied } step = kRefused;
  for (const std::string& line : Lines(trace.str())) {
    switch (step) {
      case kRefused:
        if (Has(line, R"("fault":"refused_start","nodes":[1])")) step = kStopped;
        break;
      case kStopped:
        if (Has(line, R"("type":"stop","node":1,"why":"refused to start: UNAVAILABLE)")) {
          step = kRestarted;
        }
        break;
      case kRestarted:
        if (Has(line, R"("fault":"restart","nodes":[1])")) step = kApplied;
        break;
      case kApplied:
        EXPECT_FALSE(Has(line, R"("fault":"refused_start")")) << line;
        break;
    }
    if (step == kApplied && Has(line, R"("type":"apply","node":1,)")) break;
  }
  EXPECT_EQ(step, kApplied) << "n1 was not refused, stopped, restarted and applying:\n"
                            << trace.str();
}

// A restart from the schedule retries too: n1, refused at 3 s, starts at
// 5 s once the read errors are gone, and applies before the safety phase
// ends (the liveness phase has nothing to restart).
TEST(StartRefusalTest, TransientRefusalIsRetriedWhenTheScheduleRestartsTheNode) {
  SimulationOptions options = ThreeNodes(R"(
    2000000 crash nodes=1
    2000000 disk_read_errors nodes=1 value=1000000
    3000000 restart nodes=1
    4000000 disk_read_errors nodes=1
    5000000 restart nodes=1
  )");
  std::ostringstream trace;
  options.trace = &trace;
  const SimulationReport report = RunSimulation(options);
  ASSERT_EQ(report.faults.count("refused_start"), 1u) << trace.str();
  ASSERT_TRUE(report.passed) << report.failure;
  EXPECT_FALSE(report.recovery_impossible) << report.recovery_detail;
  EXPECT_EQ(report.faults.at("refused_start"), 1u) << trace.str();

  int restarts = 0;
  bool applied_after_second_restart = false;
  for (const std::string& line : Lines(trace.str())) {
    if (Has(line, R"("fault":"heal")") && Has(line, "liveness phase")) break;
    if (Has(line, R"("fault":"restart","nodes":[1])")) ++restarts;
    if (restarts == 2 && Has(line, R"("type":"apply","node":1,)")) {
      applied_after_second_restart = true;
    }
  }
  EXPECT_EQ(restarts, 2) << trace.str();
  EXPECT_TRUE(applied_after_second_restart) << trace.str();
}

}  // namespace
}  // namespace blixard::sim

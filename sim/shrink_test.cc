#include "sim/shrink.h"

#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sim/test_oracles.h"

namespace blixard::sim {
namespace {

using ::testing::ElementsAre;

// ---- ddmin on its own ------------------------------------------------------

TEST(ShrinkTest, DdMinFindsTheFailureInducingIndices) {
  int calls = 0;
  const std::vector<size_t> kept = DdMin(
      100,
      [&](const std::vector<size_t>& keep) {
        ++calls;
        int found = 0;
        for (size_t i : keep) found += (i == 3 || i == 50 || i == 77) ? 1 : 0;
        return found == 3;
      },
      [] { return false; });
  EXPECT_THAT(kept, ElementsAre(3, 50, 77));
  // Far fewer tests than the 2^100 subsets; ddmin's bound is O(n^2).
  EXPECT_LT(calls, 300);
}

TEST(ShrinkTest, DdMinTriesTheEmptySetFirst) {
  int calls = 0;
  EXPECT_TRUE(DdMin(
                  10,
                  [&](const std::vector<size_t>&) {
                    ++calls;
                    return true;
                  },
                  [] { return false; })
                  .empty());
  EXPECT_EQ(calls, 1);
}

TEST(ShrinkTest, DdMinStopsWhenToldAndKeepsTheBestSoFar) {
  int calls = 0;
  const std::vector<size_t> kept = DdMin(
      64,
      [&](const std::vector<size_t>& keep) {
        ++calls;
        for (size_t i : keep) {
          if (i == 5) return true;
        }
        return false;
      },
      [&] { return calls >= 4; });
  EXPECT_EQ(calls, 4);
  EXPECT_LT(kept.size(), 64u);
  EXPECT_NE(std::find(kept.begin(), kept.end(), 5u), kept.end());
}

// ---- the whole search against a fake simulation -----------------------------
//
// The fake "violation": a crash of node 3, a partition window of at least one
// second, and client 1001's operation 7 — at the time the later of the crash
// and the heal happens. Everything else in the run is noise the shrinker must
// remove, and the fake is cheap, so the search is tested fast and exactly.

constexpr SimMicros kWindowUsNeeded = 1'000'000;

ClientOp Op(SimMicros at, uint64_t client, uint64_t id) {
  ClientOp op;
  op.at_us = at;
  op.client = client;
  op.op_id = id;
  op.rng_draws = id * 10;
  op.request.mutable_query()->set_kv_get(absl::StrCat("k", id % 4));
  return op;
}

Fault F(SimMicros at, FaultKind kind, std::vector<NodeId> nodes, std::vector<NodeId> others = {}) {
  return Fault{at, kind, std::move(nodes), std::move(others), 0};
}

SimulationReport FakeRun(const SimulationOptions& o) {
  SimulationReport report;
  report.schedule = o.schedule.value_or(FaultSchedule{});
  report.ops = o.ops.value_or(std::vector<ClientOp>{});
  std::optional<SimMicros> crash, window_end;
  const std::vector<Fault>& faults = report.schedule.faults;
  for (size_t i = 0; i < faults.size(); ++i) {
    if (faults[i].kind == FaultKind::kCrash && faults[i].nodes == std::vector<NodeId>{NodeId(3)}) {
      crash = faults[i].at_us;
    }
    if (faults[i].kind != FaultKind::kPartition) continue;
    for (size_t j = i + 1; j < faults.size(); ++j) {
      if (faults[j].kind != FaultKind::kHeal) continue;
      if (faults[j].at_us - faults[i].at_us >= kWindowUsNeeded) window_end = faults[j].at_us;
      break;
    }
  }
  bool op = false;
  for (const ClientOp& c : report.ops) op |= c.client == 1001 && c.op_id == 7;
  if (crash && window_end && op) {
    const SimMicros at = std::max(*crash, *window_end);
    if (at < o.duration_us) {
      report.passed = false;
      report.violation_property = "fake";
      report.violation_us = at;
      report.failure = "fake violated";
    }
  }
  return report;
}

SimulationOptions Noisy() {
  SimulationOptions o;
  o.seed = 3;
  o.nodes = 5;
  o.duration_us = 60'000'000;
  FaultSchedule schedule;
  schedule.faults = {
      F(1'000'000, FaultKind::kCrash, {NodeId(5)}),
      F(2'000'000, FaultKind::kPartition, {NodeId(1), NodeId(2)},
        {NodeId(3), NodeId(4), NodeId(5)}),
      F(3'000'000, FaultKind::kRestart, {NodeId(5)}),
      F(4'000'000, FaultKind::kCrash, {NodeId(3)}),
      F(5'000'000, FaultKind::kPause, {NodeId(4)}),
      F(9'000'000, FaultKind::kHeal, {}),
      F(9'500'000, FaultKind::kResume, {NodeId(4)}),
      F(12'000'000, FaultKind::kRestart, {NodeId(3)}),
      F(20'000'000, FaultKind::kIsolate, {NodeId(2)}),
      F(25'000'000, FaultKind::kHeal, {}),
  };
  o.schedule = schedule;
  std::vector<ClientOp> ops;
  for (uint64_t id = 1; id <= 30; ++id) {
    for (uint64_t client = 1000; client < 1003; ++client) {
      ops.push_back(Op(static_cast<SimMicros>(id) * 500'000, client, id));
    }
  }
  ClientOp drain;
  drain.at_us = 15'500'000;
  drain.client = 1002;
  drain.op_id = 31;
  drain.request.mutable_command()->mutable_request_id()->set_client_id(1002);
  drain.request.mutable_command()->mutable_request_id()->set_sequence(1);
  drain.request.mutable_command()->mutable_set_worker_status()->set_node_id(5);
  ops.push_back(drain);
  o.ops = ops;
  return o;
}

TEST(ShrinkTest, ShrinksTheFakeFailureToItsCause) {
  ShrinkOptions options;
  options.run = FakeRun;
  std::vector<std::string> progress;
  options.progress = [&](const std::string& line) { progress.push_back(line); };
  const ShrinkResult result = Shrink(Noisy(), options);
  ASSERT_TRUE(result.failed);
  ASSERT_TRUE(result.reproduced);
  EXPECT_FALSE(result.budget_exhausted);
  EXPECT_EQ(result.property, "fake");
  EXPECT_EQ(result.before.faults, 10u);
  EXPECT_EQ(result.before.ops, 91u);
  EXPECT_EQ(result.before.nodes, 5);

  // Exactly the cause: partition, heal, crash of 3; one operation; nodes 4
  // and 5 gone (node 3 is needed); the run ends just after the violation.
  const SimulationOptions& s = result.shrunk;
  ASSERT_EQ(s.schedule->faults.size(), 3u) << s.schedule->ToText();
  EXPECT_EQ(s.schedule->faults[0].kind, FaultKind::kPartition);
  EXPECT_EQ(s.schedule->faults[0].others, (std::vector<NodeId>{NodeId(3)}));
  // The heal moved before the crash: the 7 s window was halved while it
  // stayed >= 1 s (to 1.75 s).
  EXPECT_EQ(s.schedule->faults[1].kind, FaultKind::kHeal);
  EXPECT_EQ(s.schedule->faults[2].kind, FaultKind::kCrash);
  const SimMicros window = s.schedule->faults[1].at_us - s.schedule->faults[0].at_us;
  EXPECT_GE(window, kWindowUsNeeded);
  EXPECT_LT(window, 2 * kWindowUsNeeded);
  ASSERT_EQ(s.ops->size(), 1u);
  EXPECT_EQ((*s.ops)[0].client, 1001u);
  EXPECT_EQ((*s.ops)[0].op_id, 7u);
  EXPECT_EQ(s.nodes, 3);
  EXPECT_EQ(s.duration_us, result.shrunk_report.violation_us + 1);
  EXPECT_EQ(result.after.faults, 3u);
  EXPECT_EQ(result.after.ops, 1u);
  EXPECT_FALSE(result.shrunk_report.passed);
  EXPECT_FALSE(progress.empty());

  // Deterministic: the same search again gives the same answer and cost.
  const ShrinkResult again = Shrink(Noisy(), options);
  EXPECT_EQ(again.runs, result.runs);
  EXPECT_EQ(again.shrunk.schedule->ToText(), s.schedule->ToText());
}

// A fake that needs a partition in force at 8.5 s: the window shrinks
// towards that instant from both ends.
SimulationReport NeedsPartitionAt8500ms(const SimulationOptions& o) {
  SimulationReport report;
  report.schedule = *o.schedule;
  report.ops = *o.ops;
  constexpr SimMicros kAt = 8'500'000;
  const std::vector<Fault>& faults = o.schedule->faults;
  for (size_t i = 0; i < faults.size(); ++i) {
    if (faults[i].kind != FaultKind::kPartition || faults[i].at_us > kAt) continue;
    for (size_t j = i + 1; j < faults.size(); ++j) {
      if (faults[j].kind != FaultKind::kHeal) continue;
      if (faults[j].at_us > kAt && kAt < o.duration_us) {
        report.passed = false;
        report.violation_property = "fake";
        report.violation_us = faults[j].at_us;
      }
      break;
    }
  }
  return report;
}

TEST(ShrinkTest, ShortensAWindowFromBothEnds) {
  ShrinkOptions options;
  options.run = NeedsPartitionAt8500ms;
  const ShrinkResult result = Shrink(Noisy(), options);
  ASSERT_TRUE(result.reproduced);
  const std::vector<Fault>& faults = result.shrunk.schedule->faults;
  ASSERT_EQ(faults.size(), 2u) << result.shrunk.schedule->ToText();
  EXPECT_EQ(faults[0].kind, FaultKind::kPartition);
  EXPECT_EQ(faults[1].kind, FaultKind::kHeal);
  // From [2 s, 9 s] to a few milliseconds around 8.5 s.
  EXPECT_LE(faults[0].at_us, 8'500'000);
  EXPECT_GT(faults[1].at_us, 8'500'000);
  EXPECT_LT(faults[1].at_us - faults[0].at_us, 4'000) << result.shrunk.schedule->ToText();
  EXPECT_TRUE(result.shrunk.ops->empty());
  EXPECT_EQ(result.shrunk.nodes, 3);  // partition 1,2 / 3 keeps node 3
}

TEST(ShrinkTest, RespectsTheRunBudget) {
  ShrinkOptions options;
  options.run = FakeRun;
  options.runs_max = 12;
  const ShrinkResult result = Shrink(Noisy(), options);
  EXPECT_TRUE(result.reproduced);
  EXPECT_TRUE(result.budget_exhausted);
  EXPECT_EQ(result.runs, 12);
  // Whatever it got to still fails the same way.
  EXPECT_EQ(FakeRun(result.shrunk).violation_property, "fake");
  EXPECT_LE(result.after.faults, result.before.faults);
}

TEST(ShrinkTest, APassingRunIsNotShrunk) {
  ShrinkOptions options;
  options.run = FakeRun;
  SimulationOptions o = Noisy();
  o.ops->clear();
  const ShrinkResult result = Shrink(o, options);
  EXPECT_FALSE(result.failed);
  EXPECT_EQ(result.runs, 1);
}

TEST(ShrinkTest, DroppingANodeDropsWhatNamesIt) {
  SimulationOptions o = Noisy();
  const SimulationOptions fewer = WithoutHighestNode(o);
  EXPECT_EQ(fewer.nodes, 4);
  // The crash and restart of node 5 go; the partition keeps its other side.
  EXPECT_EQ(fewer.schedule->faults.size(), 8u);
  EXPECT_EQ(fewer.schedule->faults[0].kind, FaultKind::kPartition);
  EXPECT_EQ(fewer.schedule->faults[0].others, (std::vector<NodeId>{NodeId(3), NodeId(4)}));
  EXPECT_EQ(fewer.ops->size(), 90u);  // the drain of node 5 is gone
  EXPECT_TRUE(fewer.Validate().ok());
}

// ---- end to end: a real simulation with a planted failure ------------------

TEST(ShrinkTest, ShrinksARealSimulation) {
  SimulationOptions failing;
  failing.seed = 11;
  failing.faults = FaultProfile::kHeavy;
  failing.duration_us = 20'000'000;
  failing.extra_oracle = TwoCrashesAndAPut;
  ShrinkOptions options;
  options.runs_max = 400;
  const ShrinkResult result = Shrink(failing, options);
  ASSERT_TRUE(result.failed);
  ASSERT_TRUE(result.reproduced);
  // For the log: what a real shrink achieves.
  std::cout << "before: " << result.before.ToString() << "\nafter: " << result.after.ToString()
            << "\nruns: " << result.runs << "\n" << result.shrunk.schedule->ToText();
  EXPECT_EQ(result.property, "test_oracle");
  EXPECT_GT(result.before.faults, 5u);
  EXPECT_GT(result.before.ops, 5u);
  EXPECT_EQ(result.after.faults, 2u) << result.shrunk.schedule->ToText();
  EXPECT_EQ(result.after.ops, 1u);
  EXPECT_LE(result.runs, options.runs_max);
  EXPECT_LT(result.after.duration_us, result.before.duration_us);
  // The shrunk run, replayed on its own, fails the same way.
  const SimulationReport replay = RunSimulation(result.shrunk);
  EXPECT_EQ(replay.violation_property, "test_oracle");
}

}  // namespace
}  // namespace blixard::sim

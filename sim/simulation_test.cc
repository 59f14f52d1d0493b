#include "sim/simulation.h"

#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/base/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sim/test_oracles.h"

namespace blixard::sim {
namespace {

using ::blixard::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::StartsWith;

SimulationOptions Options(uint64_t seed, FaultProfile faults, int64_t seconds) {
  SimulationOptions options;
  options.seed = seed;
  options.faults = faults;
  options.duration_us = seconds * 1'000'000;
  return options;
}

// The same options run twice, each with its trace.
struct TwoRuns {
  SimulationReport first, second;
  std::string first_trace, second_trace;
};
TwoRuns RunTwice(SimulationOptions options) {
  TwoRuns runs;
  std::ostringstream first_trace, second_trace;
  options.trace = &first_trace;
  runs.first = RunSimulation(options);
  options.trace = &second_trace;
  runs.second = RunSimulation(options);
  runs.first_trace = first_trace.str();
  runs.second_trace = second_trace.str();
  return runs;
}

// Same seed, same binary => byte-identical trace (and so the same hash).
TEST(SimulationTest, SameSeedGivesTheSameTrace) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    const auto [first, second, first_trace, second_trace] =
        RunTwice(Options(seed, FaultProfile::kHeavy, 8));
    ASSERT_TRUE(first.passed) << "seed " << seed << ": " << first.failure;
    EXPECT_EQ(first.trace_hash, second.trace_hash) << "seed " << seed;
    EXPECT_EQ(first.events, second.events) << "seed " << seed;
    ASSERT_EQ(first_trace, second_trace) << "seed " << seed;
  }
}

TEST(SimulationTest, DifferentSeedsTakeDifferentPaths) {
  const SimulationReport a = RunSimulation(Options(1, FaultProfile::kDefault, 5));
  const SimulationReport b = RunSimulation(Options(2, FaultProfile::kDefault, 5));
  EXPECT_NE(a.trace_hash, b.trace_hash);
}

// A short healthy run does real work: a leader, commits, applied client
// operations, and a clean linearizability verdict.
TEST(SimulationTest, FaultFreeRunMakesProgress) {
  const SimulationReport report = RunSimulation(Options(7, FaultProfile::kNone, 10));
  ASSERT_TRUE(report.passed) << report.failure;
  EXPECT_GE(report.leader_changes, 1u);
  EXPECT_GT(report.entries_committed, 50u);
  EXPECT_GT(report.clients.ok, 50u);
  EXPECT_EQ(report.clients.unknown, 0u);
  EXPECT_EQ(report.linearizability.verdict,
            LinearizabilityResult::Verdict::kLinearizable);
  EXPECT_GT(report.linearizability.operations_checked, 20u);
  EXPECT_GT(report.checks, report.events);
}

// Heavy faults across seeds: every seed passes every oracle, and over the
// set crashes, restarts, partitions and loss were really injected.
TEST(SimulationTest, HeavyFaultSeedsPass) {
  std::map<std::string, uint64_t> faults;
  uint64_t ok = 0;
  for (uint64_t seed = 100; seed < 112; ++seed) {
    const SimulationReport report = RunSimulation(Options(seed, FaultProfile::kHeavy, 20));
    ASSERT_TRUE(report.passed) << "seed " << seed << ": " << report.failure;
    for (const auto& [kind, count] : report.faults) faults[kind] += count;
    ok += report.clients.ok;
  }
  EXPECT_GT(faults["crash"], 0u);
  EXPECT_GT(faults["restart"], 0u);
  EXPECT_GT(faults["partition"], 0u);
  EXPECT_GT(faults["loss"], 0u);
  EXPECT_GT(ok, 100u);
}

TEST(SimulationTest, TraceHasTheDocumentedShape) {
  std::ostringstream trace;
  SimulationOptions options = Options(3, FaultProfile::kHeavy, 5);
  options.trace = &trace;
  const SimulationReport report = RunSimulation(options);
  const std::string text = trace.str();
  EXPECT_THAT(text, StartsWith("{\"type\":\"header\",\"seed\":3,\"nodes\":5"));
  EXPECT_THAT(text, HasSubstr("\"type\":\"role\""));
  EXPECT_THAT(text, HasSubstr("\"type\":\"apply\""));
  EXPECT_THAT(text, HasSubstr("\"type\":\"invoke\""));
  EXPECT_THAT(text, HasSubstr("\"type\":\"complete\""));
  const std::string last = text.substr(text.rfind("{\"type\":\"result\""));
  EXPECT_THAT(last, HasSubstr(report.passed ? "\"status\":\"pass\"" : "\"status\":\"fail\""));
  EXPECT_THAT(last, HasSubstr("trace_hash"));
}

SimulationOptions SwarmOptions(uint64_t seed, int64_t seconds) {
  SimulationOptions options = Options(seed, FaultProfile::kSwarm, seconds);
  return ResolveSwarm(options);
}

// Swarm seeds replay exactly too: the drawn world, the membership changes
// and the liveness phase included.
TEST(SimulationTest, SwarmSeedsGiveTheSameTraceTwice) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    const SimulationOptions options = SwarmOptions(seed, 8);
    const auto [first, second, first_trace, second_trace] = RunTwice(options);
    ASSERT_TRUE(first.passed) << "seed " << seed << ": " << first.failure;
    EXPECT_EQ(first.trace_hash, second.trace_hash) << "seed " << seed;
    ASSERT_EQ(first_trace, second_trace) << "seed " << seed;
    // The header states every drawn parameter.
    EXPECT_THAT(first_trace, HasSubstr(absl::StrCat("\"swarm\":\"", options.swarm->ToText())));
  }
}

// Drawing the params from the seed and passing the same params explicitly
// are the same run: an options object states the run completely.
TEST(SimulationTest, ExplicitSwarmParamsReplayTheDrawnRun) {
  SimulationOptions drawn = Options(5, FaultProfile::kSwarm, 10);
  SimulationOptions explicit_params = SwarmOptions(5, 10);
  ASSERT_OK_AND_ASSIGN(explicit_params.swarm,
                       SwarmParams::Parse(explicit_params.swarm->ToText()));
  EXPECT_EQ(RunSimulation(drawn).trace_hash, RunSimulation(explicit_params).trace_hash);
}

// The extremes of the swarm's cluster sizes work: a lone voter, and seven
// voters with two spares and frequent membership changes.
TEST(SimulationTest, SwarmRunsWithOneAndSevenNodes) {
  for (int nodes : {1, 7}) {
    uint64_t proposed = 0, ok = 0;
    for (uint64_t seed = 1; seed <= 4; ++seed) {
      SimulationOptions options = SwarmOptions(seed, 30);
      options.swarm->nodes = nodes;
      options.swarm->spares = kSwarmNodesMax - nodes >= 2 ? 2 : 0;
      options.swarm->w_membership = 4;
      ASSERT_OK(options.Validate());
      const SimulationReport report = RunSimulation(options);
      ASSERT_TRUE(report.passed) << "nodes " << nodes << " seed " << seed << ": "
                                 << report.failure;
      EXPECT_EQ(report.nodes, nodes);
      EXPECT_GE(report.leader_changes, 1u);
      proposed += report.membership_proposed;
      ok += report.clients.ok;
    }
    EXPECT_GT(ok, 40u) << "nodes " << nodes;
    EXPECT_GT(proposed, 0u) << "nodes " << nodes;
  }
}

// Every kind of membership change goes through the leader: a spare joins
// as a learner and is promoted, the leader removes itself, and a voter
// leaves; the cluster still serves clients and ends converged.
TEST(SimulationTest, MembershipChangesFromAnExplicitSchedule) {
  SimulationOptions options = SwarmOptions(11, 20);
  SwarmParams& p = *options.swarm;
  p.nodes = 3;
  p.spares = 2;
  ASSERT_OK_AND_ASSIGN(options.schedule, FaultSchedule::Parse(R"(
    3000000 add_learner nodes=4
    6000000 promote nodes=4
    9000000 remove_leader
    13000000 add_learner nodes=5
    15000000 remove nodes=5
    17000000 remove nodes=4
  )"));
  std::ostringstream trace;
  options.trace = &trace;
  const SimulationReport report = RunSimulation(options);
  ASSERT_TRUE(report.passed) << report.failure;
  EXPECT_FALSE(report.recovery_impossible) << report.recovery_detail;
  EXPECT_EQ(report.membership_proposed + report.membership_skipped, 6u) << trace.str();
  EXPECT_GE(report.membership_proposed, 5u) << trace.str();
  for (absl::string_view kind : {"add_learner", "promote", "remove_leader", "remove"}) {
    EXPECT_THAT(trace.str(), HasSubstr(absl::StrCat("\"fault\":\"", kind, "\"")));
  }
  EXPECT_GT(report.clients.ok, 20u);
}

// Regression (swarm seed 163): a reply to the previous operation's first
// attempt arrived just after the next operation's first attempt was sent
// and was taken as its answer (attempts were matched by number alone), so
// a CAS "succeeded" with a get's reply and the history was not
// linearizable.
TEST(SimulationTest, LateReplyToThePreviousOperationIsIgnored) {
  const SimulationReport report = RunSimulation(Options(163, FaultProfile::kSwarm, 60));
  ASSERT_TRUE(report.passed) << report.failure;
  EXPECT_EQ(report.linearizability.verdict, LinearizabilityResult::Verdict::kLinearizable);
}

// Recovery is impossible only when data loss took a quorum of some half
// of the configuration; otherwise a stalled liveness phase is a bug.
TEST(SimulationTest, QuorumCannotRunOnlyWhenAMajorityLostItsData) {
  raft::ConfState three;
  for (uint64_t v : {1, 2, 3}) three.add_voters(v);
  EXPECT_EQ(QuorumCannotRun(three, {}), std::nullopt);
  EXPECT_EQ(QuorumCannotRun(three, {NodeId(2)}), std::nullopt);
  const std::optional<std::string> lost = QuorumCannotRun(three, {NodeId(1), NodeId(3)});
  ASSERT_TRUE(lost.has_value());
  EXPECT_THAT(*lost, HasSubstr("n1, n3 refused to start"));
  EXPECT_THAT(*lost, HasSubstr("1 of 3 can run, a quorum needs 2"));
  // Nodes outside the configuration (removed, spares) do not count.
  EXPECT_EQ(QuorumCannotRun(three, {NodeId(4), NodeId(5), NodeId(6)}), std::nullopt);
  // Joint: the outgoing half needs its own majority.
  raft::ConfState joint = three;
  joint.add_voters_outgoing(4);
  joint.add_voters_outgoing(5);
  EXPECT_TRUE(QuorumCannotRun(joint, {NodeId(4)}).has_value());
  EXPECT_EQ(QuorumCannotRun(joint, {NodeId(1)}), std::nullopt);
  // Two voters: losing either one loses the quorum.
  raft::ConfState two;
  two.add_voters(1);
  two.add_voters(2);
  EXPECT_TRUE(QuorumCannotRun(two, {NodeId(2)}).has_value());
}

TEST(SimulationTest, BadOptionsAreRefused) {
  SimulationOptions options;
  options.nodes = 0;
  EXPECT_FALSE(options.Validate().ok());
  options.nodes = kSimNodesMax + 1;
  EXPECT_FALSE(options.Validate().ok());
  options.nodes = 3;
  options.duration_us = 0;
  EXPECT_FALSE(options.Validate().ok());
  EXPECT_FALSE(ParseFaultProfile("loud").ok());
  options.duration_us = 1'000'000;
  options.swarm = DrawSwarmParams(SwarmStream(1));
  EXPECT_THAT(options.Validate(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("without faults=swarm")));
  options.faults = FaultProfile::kSwarm;
  EXPECT_OK(options.Validate());
  options.swarm->clients = 0;
  EXPECT_THAT(options.Validate(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("clients=0")));
  EXPECT_FALSE(ParseWorkloadKind("bulk").ok());
}

// A run's recorded faults and client operations, given back with the same
// seed, replay it exactly: the same trace, event for event.
TEST(SimulationTest, RecordedScheduleAndOpsReplayTheRunExactly) {
  for (uint64_t seed : {5u, 6u}) {
    const SimulationReport drawn = RunSimulation(Options(seed, FaultProfile::kHeavy, 8));
    ASSERT_TRUE(drawn.passed) << drawn.failure;
    ASSERT_GT(drawn.ops.size(), 20u);
    ASSERT_GT(drawn.schedule.faults.size(), 5u);
    EXPECT_EQ(drawn.ops.size(), drawn.clients.invoked);
    SimulationOptions replay = Options(seed, FaultProfile::kHeavy, 8);
    replay.schedule = drawn.schedule;
    replay.ops = drawn.ops;
    const SimulationReport replayed = RunSimulation(replay);
    EXPECT_EQ(replayed.trace_hash, drawn.trace_hash) << "seed " << seed;
    EXPECT_EQ(replayed.events, drawn.events);
    ASSERT_EQ(replayed.ops.size(), drawn.ops.size());
    for (size_t i = 0; i < drawn.ops.size(); ++i) {
      ASSERT_TRUE(replayed.ops[i] == drawn.ops[i]) << i << ": " << replayed.ops[i].ToText()
                                                  << " vs " << drawn.ops[i].ToText();
    }
  }
}

// Every recorded operation survives its text form.
TEST(SimulationTest, ClientOpTextRoundTrips) {
  SimulationOptions options = Options(9, FaultProfile::kDefault, 10);
  const SimulationReport report = RunSimulation(options);
  std::set<std::string> names;
  for (const ClientOp& op : report.ops) {
    absl::StatusOr<ClientOp> parsed = ClientOp::Parse(op.ToText());
    ASSERT_TRUE(parsed.ok()) << parsed.status() << "\n" << op.ToText();
    EXPECT_TRUE(*parsed == op) << op.ToText() << "\n" << parsed->ToText();
    names.insert(op.Name());
  }
  // The mixed workload drew KV and cluster operations of several kinds.
  EXPECT_TRUE(names.count("put") && names.count("get") && names.count("submit_task"))
      << names.size();
}

TEST(SimulationTest, BadClientOpLinesAreRefusedWithAReason) {
  EXPECT_TRUE(ClientOp::Parse("5 get client=1000 id=1 rng=3 kv_get: \"k1\"").ok());
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"x get client=1000 id=1 rng=3 kv_get: \"k1\"", "bad time"},
      {"5 get client=1000 rng=3 kv_get: \"k1\"", "needs client="},
      {"5 get client=1000 id=1 rng=3", "no arguments"},
      {"5 get", "want"},
      {"5 get client=1000 id=1 rng=x kv_get: \"k1\"", "bad rng"},
      {"5 put client=1000 id=1 rng=3 kv_get: \"k1\"", "does not match"},
      {"5 put client=1000 id=1 rng=3 kv_put { key: \"k\" }", "needs seq="},
      {"5 put client=1000 id=1 rng=3 bogus { }", "neither"},
  };
  for (const auto& [line, why] : bad) {
    absl::StatusOr<ClientOp> parsed = ClientOp::Parse(line);
    ASSERT_FALSE(parsed.ok()) << line;
    EXPECT_THAT(std::string(parsed.status().message()), HasSubstr(why)) << line;
  }
  SimulationOptions options;
  options.ops = {*ClientOp::Parse("5 get client=999 id=1 rng=3 kv_get: \"k1\"")};
  EXPECT_FALSE(options.Validate().ok());
}

TEST(SimulationTest, ReplayReproducesTheViolation) {
  SimulationOptions options = Options(11, FaultProfile::kHeavy, 30);
  options.extra_oracle = TwoCrashesAndAPut;
  const SimulationReport failing = RunSimulation(options);
  ASSERT_FALSE(failing.passed);
  EXPECT_EQ(failing.violation_property, "test_oracle");
  EXPECT_THAT(failing.failure, StartsWith("test_oracle violated at t="));
  options.schedule = failing.schedule;
  options.ops = failing.ops;
  const SimulationReport replayed = RunSimulation(options);
  EXPECT_EQ(replayed.violation_property, "test_oracle");
  EXPECT_EQ(replayed.violation_us, failing.violation_us);
  EXPECT_EQ(replayed.failure, failing.failure);
  EXPECT_EQ(replayed.trace_hash, failing.trace_hash);
}

TEST(SimulationTest, PropertyIdsAreIdentifiers) {
  EXPECT_EQ(PropertyId("election safety"), "election_safety");
  EXPECT_EQ(PropertyId("linearizability"), "linearizability");
}

}  // namespace
}  // namespace blixard::sim

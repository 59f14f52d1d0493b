// Randomized property tests: seeded random schedules of ticks, message
// deliveries (reordered, duplicated, dropped), partitions, slow disks and
// crashes that lose unpersisted writes, over 3-7 nodes. After every step the
// SafetyChecker verifies election safety, log matching, leader completeness,
// that committed entries never change and that applied prefixes are
// identical (Raft paper 5.2-5.4); the Cluster runs CheckInvariants() on the
// node after every Step, Tick, GetReady and OnPersisted.
//
// A failing seed replays exactly: the schedule depends only on the seed.
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/base/rng.h"
#include "core/raft/raw_node.h"
#include "core/raft/testing/cluster.h"
#include "gtest/gtest.h"

namespace blixard::raft {
namespace {

using testing::Cluster;
using testing::ClusterOptions;
using testing::SafetyChecker;

// Schedules per test case; 8 cases give kSchedulesPerCase * 8 per run.
constexpr uint64_t kSchedulesPerCase = 1300;
constexpr int kStepsPerSchedule = 160;
// Bound on the rounds of the final convergence phase.
constexpr int kConvergeRounds = 200;

struct Outcome {
  std::string violation;  // empty when every property held
  uint64_t committed = 0;
};

Outcome RunSchedule(uint64_t seed, Logger* log = nullptr) {
  Rng rng(seed);
  NullLogger null_logger;
  Logger& logger = log != nullptr ? *log : null_logger;
  ClusterOptions opts;
  opts.seed = seed;
  opts.election_tick = 5 + static_cast<int>(rng.Uniform(6));
  opts.heartbeat_tick = 1 + static_cast<int>(rng.Uniform(2));
  opts.pre_vote = rng.Chance(1, 2);
  opts.check_quorum = rng.Chance(1, 2);
  if (opts.check_quorum && rng.Chance(1, 3)) {
    opts.read_only_option = ReadOnlyOption::kLeaseBased;
  }
  opts.max_size_per_msg = rng.Chance(1, 2) ? 16 : 1 << 20;
  opts.max_inflight_msgs = 1 + rng.Uniform(8);
  opts.max_uncommitted_entries_size = rng.Chance(1, 4) ? 64 : 0;
  opts.disable_proposal_forwarding = rng.Chance(1, 4);
  const size_t n = 3 + rng.Uniform(5);
  Cluster c(opts, &logger);
  c.AddVoters(n);
  SafetyChecker checker;
  Outcome out;
  uint64_t proposals = 0;
  auto pick = [&]() { return 1 + rng.Uniform(n); };
  for (int step = 0; step < kStepsPerSchedule; ++step) {
    const uint64_t action = rng.Uniform(100);
    const uint64_t id = pick();
    if (action < 18) {
      c.Tick(id);
    } else if (action < 32) {
      c.TakeReady(id);
    } else if (action < 46) {
      c.PersistOne(id);
    } else if (action < 72) {
      if (!c.in_flight().empty()) {
        const size_t i = rng.Uniform(c.in_flight().size());
        if (rng.Chance(1, 20)) c.in_flight().push_back(c.in_flight()[i]);
        absl::Status s = c.DeliverAt(i);
        if (s.code() == absl::StatusCode::kInvalidArgument) {
          out.violation = absl::StrCat("valid message refused: ", s.ToString());
          return out;
        }
      }
    } else if (action < 76) {
      if (!c.in_flight().empty()) {
        const size_t i = rng.Uniform(c.in_flight().size());
        c.in_flight().erase(c.in_flight().begin() + static_cast<long>(i));
      }
    } else if (action < 85) {
      if (!c.node(id).down) {
        c.raw(id).Propose(absl::StrCat("s", seed, "-", proposals++));
      }
    } else if (action < 87) {
      if (rng.Chance(1, 2)) {
        c.Heal();
      } else {
        std::vector<uint64_t> a, b;
        for (uint64_t x = 1; x <= n; ++x) (rng.Chance(1, 2) ? a : b).push_back(x);
        c.Partition({a, b});
      }
    } else if (action < 89) {
      if (!c.node(id).down) {
        c.Crash(id);
      } else {
        c.Restart(id);
      }
    } else if (action < 91) {
      if (c.node(id).down) c.Restart(id);
    } else if (action < 93) {
      if (!c.node(id).down) c.raw(id).Campaign();
    } else if (action < 95) {
      if (!c.node(id).down && c.node(id).applied_index() > Index(0)) {
        c.Compact(id, c.node(id).applied_index()).IgnoreError();
      }
    } else if (action < 97) {
      if (!c.node(id).down) c.raw(id).ReadIndex(absl::StrCat("r", step));
    } else {
      if (!c.node(id).down) c.raw(id).TransferLeader(NodeId(pick()));
    }
    out.violation = checker.Check(c);
    if (!out.violation.empty()) {
      out.violation = absl::StrCat("step ", step, ": ", out.violation);
      return out;
    }
  }
  // Liveness: heal everything; a leader must emerge and commit a new entry
  // on every node.
  c.Heal();
  for (uint64_t id = 1; id <= n; ++id) {
    if (c.node(id).down) c.Restart(id);
  }
  logger.Info("---- converge phase");
  bool done = false;
  uint64_t target = 0;
  for (int round = 0; round < kConvergeRounds && !done; ++round) {
    for (uint64_t id = 1; id <= n; ++id) c.Tick(id);
    c.Stabilize();
    if (log != nullptr) {
      for (uint64_t id = 1; id <= n; ++id) {
        const Raft& r = c.raw(id).raft();
        logger.Debug("round ", round, " node ", id, " ", RoleName(r.role()),
                     " elapsed ", r.election_elapsed(), "/",
                     r.randomized_election_timeout());
      }
    }
    out.violation = checker.Check(c);
    if (!out.violation.empty()) return out;
    // Converged: a leader has committed an entry of its own term and every
    // node has applied up to that leader's commit index.
    for (uint64_t id = 1; id <= n; ++id) {
      const Raft& r = c.raw(id).raft();
      if (r.role() != Role::kLeader) continue;
      if (r.log().ZeroTermOnError(r.log().committed()) != r.term()) continue;
      target = r.log().committed().value();
      done = true;
      for (uint64_t other = 1; other <= n; ++other) {
        done &= c.node(other).applied_index() == Index(target);
      }
    }
  }
  if (!done) {
    out.violation = "cluster did not converge after healing";
    for (uint64_t id = 1; id <= n; ++id) {
      const Raft& r = c.raw(id).raft();
      logger.Info("final ", id, " ", RoleName(r.role()), " term ", r.term().value(),
                  " lead ", r.lead().value(), " commit ", r.log().committed().value(),
                  " last ", r.log().LastIndex().value(), " applied ",
                  c.node(id).applied_index().value(), " ", r.tracker().config().ToString());
      if (r.role() == Role::kLeader) {
        for (const auto& [pid, pr] : r.tracker().progress()) {
          logger.Info("  progress ", pid.value(), " ", pr.ToString());
        }
      }
    }
    return out;
  }
  out.committed = target;
  return out;
}

void RunRange(uint64_t first_seed) {
  uint64_t committed = 0;
  for (uint64_t seed = first_seed; seed < first_seed + kSchedulesPerCase; ++seed) {
    Outcome o = RunSchedule(seed);
    ASSERT_TRUE(o.violation.empty()) << "seed " << seed << ": " << o.violation;
    committed += o.committed;
  }
  // The schedules must make progress, or the test proves nothing.
  EXPECT_GT(committed, kSchedulesPerCase);
}

TEST(RaftPropertyTest, Schedules0) { RunRange(1); }
TEST(RaftPropertyTest, Schedules1) { RunRange(1 + 1 * kSchedulesPerCase); }
TEST(RaftPropertyTest, Schedules2) { RunRange(1 + 2 * kSchedulesPerCase); }
TEST(RaftPropertyTest, Schedules3) { RunRange(1 + 3 * kSchedulesPerCase); }
TEST(RaftPropertyTest, Schedules4) { RunRange(1 + 4 * kSchedulesPerCase); }
TEST(RaftPropertyTest, Schedules5) { RunRange(1 + 5 * kSchedulesPerCase); }
TEST(RaftPropertyTest, Schedules6) { RunRange(1 + 6 * kSchedulesPerCase); }
TEST(RaftPropertyTest, Schedules7) { RunRange(1 + 7 * kSchedulesPerCase); }

// Replays one seed with logs: BLIXARD_RAFT_SEED=<seed>.
TEST(RaftPropertyTest, ReplaySeedFromEnvironment) {
  const char* env = std::getenv("BLIXARD_RAFT_SEED");
  if (env == nullptr) GTEST_SKIP() << "set BLIXARD_RAFT_SEED to replay a seed";
  StderrLogger logger(LogLevel::kDebug);
  Outcome o = RunSchedule(std::strtoull(env, nullptr, 10), &logger);
  EXPECT_TRUE(o.violation.empty()) << o.violation;
}

TEST(RaftPropertyTest, SameSeedSameOutcome) {
  Outcome a = RunSchedule(424242);
  Outcome b = RunSchedule(424242);
  EXPECT_EQ(a.violation, b.violation);
  EXPECT_EQ(a.committed, b.committed);
  EXPECT_GT(a.committed, 0u);
}

}  // namespace
}  // namespace blixard::raft

// Randomized property tests: seeded random schedules of ticks, message
// deliveries (reordered, duplicated, dropped), partitions, slow disks and
// crashes that lose unpersisted writes, over 3-7 nodes. After every step the
// SafetyChecker verifies election safety, log matching, leader completeness,
// that committed entries never change and that applied prefixes are
// identical (Raft paper 5.2-5.4); the Cluster runs CheckInvariants() on the
// node after every Step, Tick, GetReady and OnPersisted.
//
// A failing seed replays exactly: the schedule depends only on the seed.
#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <set>
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
constexpr int kStepsPerSchedule = 300;
// Bound on the rounds of the final convergence phase.
constexpr int kConvergeRounds = 200;

struct Outcome {
  std::string violation;  // empty when every property held
  uint64_t committed = 0;
  bool membership_changed = false;
  uint64_t random_phase_commit = 0;  // highest commit before healing
};

Outcome RunSchedule(uint64_t seed, Logger* log = nullptr,
                    bool with_membership = false) {
  Rng rng(seed);
  NullLogger null_logger;
  Logger& logger = log != nullptr ? *log : null_logger;
  ClusterOptions opts;
  opts.seed = seed;
  opts.election_tick = 3 + static_cast<int>(rng.Uniform(5));
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
  const size_t n = with_membership ? 4 + rng.Uniform(4) : 3 + rng.Uniform(5);
  Cluster c(opts, &logger);
  if (with_membership) {
    // Voters 1..3; the others start as non-members that may be added.
    for (uint64_t id = 1; id <= n; ++id) c.AddNode(id, {1, 2, 3});
  } else {
    c.AddVoters(n);
  }
  SafetyChecker checker;
  Outcome out;
  uint64_t proposals = 0;
  auto pick = [&]() { return 1 + rng.Uniform(n); };
  for (int step = 0; step < kStepsPerSchedule; ++step) {
    const uint64_t action = rng.Uniform(1000);
    uint64_t id = pick();
    if (with_membership && rng.Chance(1, 4)) {
      // Propose at the node that believes it leads with the highest term.
      for (uint64_t x = 1; x <= n; ++x) {
        if (c.node(x).down || c.raw(x).raft().role() != Role::kLeader) continue;
        if (c.node(id).down || c.raw(id).raft().role() != Role::kLeader ||
            c.raw(x).raft().term() > c.raw(id).raft().term()) {
          id = x;
        }
      }
      // A membership change proposed at a node that believes it leads:
      // add or remove a voter, add or demote a learner, sometimes two at
      // once (joint consensus). At least three voters always remain.
      if (!c.node(id).down && c.raw(id).raft().role() == Role::kLeader) {
        const ConfState cs = c.raw(id).raft().tracker().GetConfState();
        std::set<uint64_t> voters(cs.voters().begin(), cs.voters().end());
        std::set<uint64_t> learners(cs.learners().begin(), cs.learners().end());
        std::string spec;
        const size_t changes = rng.Chance(1, 3) ? 2 : 1;
        std::set<uint64_t> touched;
        for (size_t k = 0; k < changes; ++k) {
          const uint64_t target = pick();
          if (!touched.insert(target).second) continue;
          if (voters.count(target) > 0) {
            if (voters.size() <= 3) continue;
            voters.erase(target);
            spec += rng.Chance(1, 2) ? " r" : " l";
          } else if (learners.count(target) > 0) {
            spec += rng.Chance(1, 2) ? " v" : " r";
          } else {
            spec += rng.Chance(2, 3) ? " v" : " l";
          }
          spec += std::to_string(target);
        }
        if (!spec.empty()) {
          const ConfChangeTransition t =
              rng.Chance(1, 4) ? CONF_CHANGE_TRANSITION_JOINT_EXPLICIT
                               : CONF_CHANGE_TRANSITION_AUTO;
          c.raw(id).ProposeConfChange(Cluster::MakeConfChange(spec, t));
        }
        if (cs.voters_outgoing_size() > 0 && rng.Chance(1, 2)) {
          c.raw(id).ProposeConfChange(ConfChange());  // leave joint
        }
      }
    } else if (action < 50) {
      c.Tick(id);  // clock skew: one node's clock runs ahead
    } else if (action < 100) {
      for (uint64_t x = 1; x <= n; ++x) c.Tick(x);
    } else if (action < 350) {
      // The Host takes a Ready; usually its disk keeps up, sometimes the
      // write stays pending (slow disk).
      c.TakeReady(id);
      if (rng.Chance(3, 4)) c.PersistAll(id);
    } else if (action < 450) {
      c.PersistOne(id);
    } else if (action < 800) {
      if (!c.in_flight().empty()) {
        const size_t i = rng.Uniform(c.in_flight().size());
        if (rng.Chance(1, 20)) c.in_flight().push_back(c.in_flight()[i]);
        absl::Status s = c.DeliverAt(i);
        if (s.code() == absl::StatusCode::kInvalidArgument) {
          out.violation = absl::StrCat("valid message refused: ", s.ToString());
          return out;
        }
      }
    } else if (action < 830) {
      if (!c.in_flight().empty()) {
        c.Drop(rng.Uniform(c.in_flight().size()));
      }
    } else if (action < 910) {
      if (!c.node(id).down) {
        c.raw(id).Propose(absl::StrCat("s", seed, "-", proposals++));
      }
    } else if (action < 925) {
      if (rng.Chance(1, 2)) {
        c.Heal();
      } else {
        std::vector<uint64_t> a, b;
        for (uint64_t x = 1; x <= n; ++x) (rng.Chance(1, 2) ? a : b).push_back(x);
        c.Partition({a, b});
      }
    } else if (action < 935) {
      if (!c.node(id).down) {
        c.Crash(id);
      } else {
        c.Restart(id);
      }
    } else if (action < 950) {
      if (c.node(id).down) c.Restart(id);
    } else if (action < 960) {
      if (!c.node(id).down) c.raw(id).Campaign();
    } else if (action < 975) {
      if (!c.node(id).down && c.node(id).applied_index() > Index(0)) {
        c.Compact(id, c.node(id).applied_index()).IgnoreError();
      }
    } else if (action < 990) {
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
  for (uint64_t id = 1; id <= n; ++id) {
    if (!c.node(id).down) {
      out.random_phase_commit = std::max(
          out.random_phase_commit, c.raw(id).raft().log().committed().value());
    }
  }
  // Liveness: heal everything; a leader must emerge and commit a new entry
  // on every node.
  c.Heal();
  for (uint64_t id = 1; id <= n; ++id) {
    if (c.node(id).down) c.Restart(id);
  }
  // An operator shuts down servers removed from the configuration (a
  // removed server that never learned of its removal would otherwise keep
  // disrupting elections: thesis 4.2.3). The membership is the one applied
  // by the most advanced node.
  std::set<uint64_t> members;
  {
    uint64_t best = 1;
    for (uint64_t id = 1; id <= n; ++id) {
      if (c.node(id).applied_index() > c.node(best).applied_index()) best = id;
    }
    const ConfState& cs = c.node(best).conf_state;
    for (uint64_t v : cs.voters()) members.insert(v);
    for (uint64_t v : cs.voters_outgoing()) members.insert(v);
    for (uint64_t v : cs.learners()) members.insert(v);
    for (uint64_t v : cs.learners_next()) members.insert(v);
    for (uint64_t id = 1; id <= n; ++id) {
      if (members.count(id) == 0) c.Crash(id);
    }
  }
  logger.Info("---- converge phase");
  bool done = false;
  uint64_t target = 0;
  for (int round = 0; round < kConvergeRounds && !done; ++round) {
    for (uint64_t id = 1; id <= n; ++id) c.Tick(id);
    c.Stabilize();
    // A leader of an explicit joint config must leave it for the cluster to
    // settle.
    for (uint64_t id = 1; id <= n; ++id) {
      if (c.node(id).down || c.raw(id).raft().role() != Role::kLeader) continue;
      if (c.raw(id).raft().tracker().config().voters.joint()) {
        c.raw(id).ProposeConfChange(ConfChange());
      }
    }
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
      if (c.node(id).down) continue;
      const Raft& r = c.raw(id).raft();
      if (r.role() != Role::kLeader) continue;
      if (r.log().ZeroTermOnError(r.log().committed()) != r.term()) continue;
      target = r.log().committed().value();
      done = true;
      for (const auto& [other, pr] : r.tracker().progress()) {
        if (c.node(other.value()).down) continue;
        done &= c.node(other.value()).applied_index() == Index(target);
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
  for (uint64_t id = 1; id <= n; ++id) {
    const ConfState& cs = c.node(id).conf_state;
    if (cs.voters_size() != 3 || cs.learners_size() > 0 ||
        cs.voters(2) != 3) {
      out.membership_changed = true;
    }
  }
  return out;
}

void RunRange(uint64_t first_seed, bool with_membership = false) {
  uint64_t committed = 0;
  uint64_t changed = 0;
  uint64_t random_commits = 0;
  for (uint64_t seed = first_seed; seed < first_seed + kSchedulesPerCase; ++seed) {
    if (std::getenv("BLIXARD_TRACE_SEEDS") != nullptr) {
      std::cerr << "seed " << seed << "\n";
    }
    Outcome o = RunSchedule(seed, nullptr, with_membership);
    ASSERT_TRUE(o.violation.empty()) << "seed " << seed << ": " << o.violation;
    committed += o.committed;
    changed += o.membership_changed ? 1 : 0;
    random_commits += o.random_phase_commit;
  }
  // The faulty phase itself must commit entries, not only the healed one.
  EXPECT_GT(random_commits * 4, kSchedulesPerCase) << random_commits;
  if (with_membership) {
    // A good share of schedules must actually change the membership.
    EXPECT_GT(changed * 4, kSchedulesPerCase) << changed;
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
// With membership changes (single-server and joint, learners, demotions).
TEST(RaftPropertyTest, Schedules6WithMembership) {
  RunRange(1 + 6 * kSchedulesPerCase, true);
}
TEST(RaftPropertyTest, Schedules7WithMembership) {
  RunRange(1 + 7 * kSchedulesPerCase, true);
}

// Replays one seed with logs: BLIXARD_RAFT_SEED=<seed>.
TEST(RaftPropertyTest, ReplaySeedFromEnvironment) {
  const char* env = std::getenv("BLIXARD_RAFT_SEED");
  if (env == nullptr) GTEST_SKIP() << "set BLIXARD_RAFT_SEED to replay a seed";
  StderrLogger logger(LogLevel::kDebug);
  const char* mem = std::getenv("BLIXARD_RAFT_MEMBERSHIP");
  Outcome o = RunSchedule(std::strtoull(env, nullptr, 10), &logger,
                          mem != nullptr && std::string(mem) == "1");
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

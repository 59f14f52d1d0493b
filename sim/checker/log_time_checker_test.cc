#include "sim/checker/log_time_checker.h"

#include "core/base/rng.h"
#include "core/sm/testing/command_generator.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace blixard::sim {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kSecondUs = 1'000'000;

cluster::Command At(cluster::Command c, uint64_t log_time_ms) {
  c.set_log_time_ms(log_time_ms);
  return c;
}

cluster::Command Register(uint64_t node) {
  cluster::Command c;
  c.mutable_register_worker()->set_node_id(node);
  c.mutable_register_worker()->set_address("10.0.0.1:7000");
  c.mutable_register_worker()->mutable_capacity()->set_cpu_cores(8);
  c.mutable_register_worker()->mutable_capacity()->set_memory_mb(4096);
  c.mutable_register_worker()->mutable_capacity()->set_disk_gb(100);
  return c;
}

cluster::Command Submit(const char* id, uint64_t timeout_secs, uint32_t max_attempts = 1) {
  cluster::Command c;
  c.mutable_submit_task()->set_task_id(id);
  cluster::TaskSpec* spec = c.mutable_submit_task()->mutable_spec();
  spec->set_command("x");
  spec->mutable_resources()->set_cpu_cores(1);
  spec->mutable_resources()->set_memory_mb(128);
  spec->mutable_resources()->set_disk_gb(1);
  spec->set_timeout_secs(timeout_secs);
  spec->set_max_attempts(max_attempts);
  return c;
}

cluster::Command Started(const char* id, uint64_t worker, uint32_t attempt) {
  cluster::Command c;
  c.mutable_task_started()->set_task_id(id);
  c.mutable_task_started()->set_worker_id(worker);
  c.mutable_task_started()->set_attempt(attempt);
  return c;
}

cluster::Command TimedOut(const char* id, uint64_t worker, uint32_t attempt,
                          uint64_t measured_ms) {
  cluster::Command c;
  cluster::TaskFinished* f = c.mutable_task_finished();
  f->set_task_id(id);
  f->set_worker_id(worker);
  f->mutable_result()->set_attempt(attempt);
  f->mutable_result()->set_timed_out(true);
  f->mutable_result()->set_exit_code(124);
  f->mutable_result()->set_execution_time_ms(measured_ms);
  return c;
}

// Applies commands to one state machine and feeds the checker, with virtual
// time following log time exactly (no drift, no jumps) unless told.
class Feed {
 public:
  void Apply(const cluster::Command& command, int64_t virtual_us, NodeId node = NodeId(1)) {
    checker.SetTime(virtual_us, drift_ppm, jumped_us);
    sm.Apply(next, command);
    checker.OnApplied(node, next, command, sm);
    next = next.Next();
  }
  LogTimeChecker checker;
  ClusterStateMachine sm;
  Index next = Index(1);
  int64_t drift_ppm = 0;
  int64_t jumped_us = 0;
};

TEST(LogTimeCheckerTest, AheadBoundFollowsTheFormula) {
  EXPECT_EQ(LogTimeChecker::AheadBoundMs(0, 0, 0), LogTimeChecker::kAheadSlackMs);
  EXPECT_EQ(LogTimeChecker::AheadBoundMs(10 * kSecondUs, 0, 0),
            10'000 + LogTimeChecker::kAheadSlackMs);
  // 1% fast over 100 s: one more second.
  EXPECT_EQ(LogTimeChecker::AheadBoundMs(100 * kSecondUs, 10'000, 0),
            101'000 + LogTimeChecker::kAheadSlackMs);
  // Jumps add up.
  EXPECT_EQ(LogTimeChecker::AheadBoundMs(10 * kSecondUs, 0, 2'500'000),
            12'500 + LogTimeChecker::kAheadSlackMs);
}

TEST(LogTimeCheckerTest, StampsFollowingVirtualTimePassOnEveryStep) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    Feed feed;
    sm::testing::CommandGenerator generator{Rng(seed)};
    Rng rng(seed + 100);
    int64_t virtual_us = 0;
    for (int i = 0; i < 300; ++i) {
      virtual_us += static_cast<int64_t>(rng.Range(0, 200'000));
      // A leader stamps at most virtual time (its stamp is older than the
      // apply), sometimes well behind (an old entry committed late).
      const uint64_t stamp_ms =
          static_cast<uint64_t>(virtual_us / 1000) - rng.Range(0, static_cast<uint64_t>(virtual_us / 1000));
      cluster::Command command = generator.Next(feed.sm);
      // The generator's timeouts are arbitrary (the early-timeout rule has
      // tests of its own below).
      if (command.has_task_finished()) {
        command.mutable_task_finished()->mutable_result()->set_timed_out(false);
      }
      feed.Apply(At(std::move(command), stamp_ms), virtual_us);
      ASSERT_TRUE(feed.checker.ok()) << "seed " << seed << ": " << feed.checker.violation()->detail;
    }
    EXPECT_EQ(feed.checker.checks(), 300u);
  }
}

TEST(LogTimeCheckerTest, LogTimeAheadOfVirtualTimeIsCaught) {
  Feed feed;
  feed.Apply(At(Register(1), 5'000), 5 * kSecondUs);  // on time
  EXPECT_TRUE(feed.checker.ok());
  // A new leader whose monotonic clock reads a day of uptime ahead.
  feed.Apply(At(Register(2), 86'400'000), 6 * kSecondUs);
  ASSERT_FALSE(feed.checker.ok());
  EXPECT_EQ(feed.checker.violation()->property, "log time bounded");
  EXPECT_THAT(feed.checker.violation()->detail, HasSubstr("86400000 ms is ahead"));
}

TEST(LogTimeCheckerTest, DriftAndJumpsWidenTheBound) {
  Feed feed;
  feed.drift_ppm = 10'000;  // 1% fast: 100 s of virtual time may read 101 s
  feed.Apply(At(Register(1), 101'000), 100 * kSecondUs);
  EXPECT_TRUE(feed.checker.ok());
  feed.jumped_us = 3 * kSecondUs;  // a clock jumped 3 s
  feed.Apply(At(Register(2), 104'000), 100 * kSecondUs);
  EXPECT_TRUE(feed.checker.ok());
  feed.Apply(At(Register(3), 104'000 + LogTimeChecker::kAheadSlackMs + 2), 100 * kSecondUs);
  EXPECT_FALSE(feed.checker.ok());
}

TEST(LogTimeCheckerTest, LogTimeGoingBackOnANodeIsCaught) {
  // Two replicas that disagree (as a broken max() would): fed as one node's
  // consecutive states, the second reads earlier.
  ClusterStateMachine late, early;
  const cluster::Command a = At(Register(1), 9'000);
  const cluster::Command b = At(Register(1), 4'000);
  late.Apply(Index(1), a);
  early.Apply(Index(1), b);
  early.Apply(Index(2), At(Register(2), 4'000));
  LogTimeChecker checker;
  checker.SetTime(10 * kSecondUs, 0, 0);
  checker.OnApplied(NodeId(3), Index(1), a, late);
  EXPECT_TRUE(checker.ok());
  checker.OnApplied(NodeId(3), Index(2), b, early);
  ASSERT_FALSE(checker.ok());
  EXPECT_EQ(checker.violation()->property, "log time monotonic");
  EXPECT_EQ(checker.violation()->node, NodeId(3));
}

TEST(LogTimeCheckerTest, ARestartedNodeReplayingFromEarlierIndexesIsANewSequence) {
  ClusterStateMachine before, after;
  const cluster::Command a = At(Register(1), 9'000);
  const cluster::Command b = At(Register(1), 4'000);
  before.Apply(Index(5), a);
  after.Apply(Index(3), b);
  LogTimeChecker checker;
  checker.SetTime(10 * kSecondUs, 0, 0);
  checker.OnApplied(NodeId(1), Index(5), a, before);
  checker.OnApplied(NodeId(1), Index(3), b, after);  // replay after a restart
  EXPECT_TRUE(checker.ok());
}

TEST(LogTimeCheckerTest, LeaderDeclaredTimeoutBeforeItsTimeIsCaught) {
  Feed feed;
  feed.Apply(At(Register(1), 1'000), 1 * kSecondUs);
  feed.Apply(At(Submit("t", 10), 2'000), 2 * kSecondUs);  // assigned at 2'000 ms
  feed.Apply(At(Started("t", 1, 1), 2'100), 3 * kSecondUs);
  ASSERT_EQ(feed.sm.FindTask("t")->state(), cluster::TASK_RUNNING);
  // Declared with no measurement after 5 s of log time: too early.
  feed.Apply(At(TimedOut("t", 1, 1, 0), 7'000), 8 * kSecondUs);
  ASSERT_EQ(feed.sm.FindTask("t")->state(), cluster::TASK_TIMED_OUT);
  ASSERT_FALSE(feed.checker.ok());
  EXPECT_EQ(feed.checker.violation()->property, "no early timeout");
  EXPECT_THAT(feed.checker.violation()->detail, HasSubstr("after 5000 ms of log time"));
}

TEST(LogTimeCheckerTest, TimeoutsAfterTheirTimeOrMeasuredByTheWorkerPass) {
  Feed feed;
  feed.Apply(At(Register(1), 1'000), 1 * kSecondUs);
  feed.Apply(At(Submit("a", 10), 2'000), 2 * kSecondUs);
  feed.Apply(At(Submit("b", 10, 2), 2'000), 2 * kSecondUs);
  feed.Apply(At(Started("a", 1, 1), 2'100), 3 * kSecondUs);
  feed.Apply(At(Started("b", 1, 1), 2'100), 3 * kSecondUs);
  // The leader declares "a" once 10 s of log time passed.
  feed.Apply(At(TimedOut("a", 1, 1, 0), 12'000), 12 * kSecondUs);
  // The worker measured "b"'s 10 s on its clock, while log time stood still
  // (no leader for a while): judged by the measurement. Retried: PENDING.
  feed.Apply(At(TimedOut("b", 1, 1, 10'000), 5'000), 13 * kSecondUs);
  EXPECT_TRUE(feed.checker.ok()) << feed.checker.violation()->detail;
  EXPECT_EQ(feed.sm.FindTask("a")->state(), cluster::TASK_TIMED_OUT);
  // A stale duplicate of "a"'s report is rejected and judged harmlessly.
  feed.Apply(At(TimedOut("a", 1, 1, 0), 12'500), 13 * kSecondUs);
  EXPECT_TRUE(feed.checker.ok());
}

TEST(LogTimeCheckerTest, TimedOutWithoutATimeoutIsCaught) {
  Feed feed;
  feed.Apply(At(Register(1), 1'000), 1 * kSecondUs);
  feed.Apply(At(Submit("t", 0), 2'000), 2 * kSecondUs);
  feed.Apply(At(TimedOut("t", 1, 1, 50'000), 60'000), 60 * kSecondUs);
  ASSERT_FALSE(feed.checker.ok());
  EXPECT_THAT(feed.checker.violation()->detail, HasSubstr("has no timeout"));
}

}  // namespace
}  // namespace blixard::sim

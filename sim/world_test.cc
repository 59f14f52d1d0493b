#include "sim/world.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace blixard::sim {
namespace {

const NodeId kNode1(1);
const NodeId kNode2(2);

TEST(WorldTest, EventsRunInTimeOrderThenScheduleOrder) {
  World world(1);
  std::vector<int> order;
  world.Schedule(30, kNoNode, [&] { order.push_back(3); });
  world.Schedule(10, kNoNode, [&] { order.push_back(1); });
  world.Schedule(20, kNoNode, [&] { order.push_back(20); });
  world.Schedule(20, kNoNode, [&] { order.push_back(21); });
  world.Schedule(20, kNoNode, [&] { order.push_back(22); });
  EXPECT_TRUE(world.RunUntilIdle(100));
  EXPECT_EQ(order, (std::vector<int>{1, 20, 21, 22, 3}));
  EXPECT_EQ(world.now_us(), 30);
  EXPECT_EQ(world.events_run(), 5u);
  world.CheckInvariants();
}

TEST(WorldTest, TimeJumpsToTheNextEvent) {
  World world(1);
  std::vector<SimMicros> times;
  world.Schedule(1'000'000'000, kNoNode,
                 [&] { times.push_back(world.now_us()); });
  ASSERT_TRUE(world.Step());
  EXPECT_EQ(times, (std::vector<SimMicros>{1'000'000'000}));
  EXPECT_FALSE(world.Step());
}

TEST(WorldTest, EventsScheduledAtNowFromAnEventRunAfterItsPeers) {
  World world(1);
  std::vector<std::string> order;
  world.Schedule(5, kNoNode, [&] {
    order.push_back("a");
    world.ScheduleAfter(0, kNoNode, [&] { order.push_back("c"); });
  });
  world.Schedule(5, kNoNode, [&] { order.push_back("b"); });
  world.RunUntilIdle(10);
  EXPECT_EQ(order, (std::vector<std::string>{"a", "b", "c"}));
}

TEST(WorldTest, RunUntilStopsAtTheLimitAndSetsTime) {
  World world(1);
  int ran = 0;
  world.Schedule(10, kNoNode, [&] { ++ran; });
  world.Schedule(11, kNoNode, [&] { ++ran; });
  world.RunUntil(10);
  EXPECT_EQ(ran, 1);
  EXPECT_EQ(world.now_us(), 10);
  world.RunUntil(100);
  EXPECT_EQ(ran, 2);
  EXPECT_EQ(world.now_us(), 100);
  EXPECT_EQ(world.pending_events(), 0u);
}

TEST(WorldTest, RunUntilIdleStopsAtTheEventBound) {
  World world(1);
  std::function<void()> forever = [&] {
    world.ScheduleAfter(1, kNoNode, forever);
  };
  world.Schedule(0, kNoNode, forever);
  EXPECT_FALSE(world.RunUntilIdle(100));
  EXPECT_EQ(world.events_run(), 100u);
  EXPECT_EQ(world.pending_events(), 1u);
}

TEST(WorldTest, CancelledEventsNeverRun) {
  World world(1);
  int ran = 0;
  EventId a = world.Schedule(10, kNoNode, [&] { ran += 1; });
  world.Schedule(10, kNoNode, [&] { ran += 10; });
  EXPECT_TRUE(world.IsPending(a));
  EXPECT_TRUE(world.Cancel(a));
  EXPECT_FALSE(world.Cancel(a));
  EXPECT_FALSE(world.IsPending(a));
  world.RunUntilIdle(10);
  EXPECT_EQ(ran, 10);
  EXPECT_EQ(world.events_cancelled(), 1u);
  EXPECT_FALSE(world.Cancel(EventId{}));
}

TEST(WorldTest, CancelAfterSlotReuseDoesNotCancelTheNewEvent) {
  World world(1);
  int ran = 0;
  EventId a = world.Schedule(1, kNoNode, [&] { ++ran; });
  world.RunUntilIdle(10);
  EventId b = world.Schedule(2, kNoNode, [&] { ++ran; });
  EXPECT_EQ(a.slot, b.slot);  // reused
  EXPECT_FALSE(world.Cancel(a));
  world.RunUntilIdle(10);
  EXPECT_EQ(ran, 2);
}

TEST(WorldTest, PausedNodeEventsAreDeferredUntilResume) {
  World world(1);
  world.AddNode(kNode1);
  world.AddNode(kNode2);
  std::vector<std::string> log;
  auto record = [&](std::string what) {
    return [&log, &world, what] {
      log.push_back(what + "@" + std::to_string(world.now_us()));
    };
  };
  world.Schedule(10, kNode1, record("n1a"));
  world.Schedule(20, kNode1, record("n1b"));
  world.Schedule(15, kNode2, record("n2"));
  ASSERT_TRUE(world.Pause(kNode1));
  EXPECT_FALSE(world.Pause(kNode1));
  world.RunUntil(100);
  EXPECT_EQ(log, (std::vector<std::string>{"n2@15"}));
  EXPECT_EQ(world.deferred_events(kNode1), 2u);
  world.CheckInvariants();
  ASSERT_TRUE(world.Resume(kNode1));
  world.RunUntilIdle(10);
  EXPECT_EQ(log, (std::vector<std::string>{"n2@15", "n1a@100", "n1b@100"}));
  EXPECT_EQ(world.events_deferred(), 2u);
  world.CheckInvariants();
}

TEST(WorldTest, DeferredEventsCanBeCancelled) {
  World world(1);
  world.AddNode(kNode1);
  int ran = 0;
  EventId a = world.Schedule(10, kNode1, [&] { ran += 1; });
  world.Schedule(10, kNode1, [&] { ran += 10; });
  world.Pause(kNode1);
  world.RunUntil(50);
  EXPECT_TRUE(world.Cancel(a));
  world.Resume(kNode1);
  world.RunUntilIdle(10);
  EXPECT_EQ(ran, 10);
}

TEST(WorldTest, EventIdStillCancelsAfterPauseAndResume) {
  World world(1);
  world.AddNode(kNode1);
  int ran = 0;
  EventId a = world.Schedule(10, kNode1, [&] { ran += 1; });
  world.Schedule(20, kNode1, [&] { ran += 10; });
  world.Pause(kNode1);
  world.RunUntil(50);
  world.Resume(kNode1);
  EXPECT_TRUE(world.IsPending(a));
  EXPECT_TRUE(world.Cancel(a));
  world.RunUntilIdle(10);
  EXPECT_EQ(ran, 10);
  world.CheckInvariants();
}

TEST(WorldTest, ResumedEventsRunInTheOrderTheyCameDue) {
  World world(1);
  world.AddNode(kNode1);
  std::vector<int> order;
  world.Schedule(30, kNode1, [&] { order.push_back(30); });  // scheduled first
  world.Schedule(10, kNode1, [&] { order.push_back(10); });
  world.Schedule(20, kNode1, [&] { order.push_back(20); });
  world.Pause(kNode1);
  world.RunUntil(40);
  world.Schedule(40, kNoNode, [&] { order.push_back(0); });  // already due now
  world.Resume(kNode1);
  world.RunUntilIdle(10);
  EXPECT_EQ(order, (std::vector<int>{0, 10, 20, 30}));
}

TEST(WorldTest, CrashDropsPendingAndDeferredEventsOfThatNodeOnly) {
  World world(1);
  world.AddNode(kNode1);
  world.AddNode(kNode2);
  int n1 = 0, n2 = 0, w = 0;
  world.Schedule(10, kNode1, [&] { ++n1; });
  world.Schedule(30, kNode1, [&] { ++n1; });
  world.Schedule(10, kNode2, [&] { ++n2; });
  world.Schedule(10, kNoNode, [&] { ++w; });
  world.Pause(kNode1);
  world.RunUntil(20);  // the first n1 event is deferred
  ASSERT_TRUE(world.Crash(kNode1));
  EXPECT_FALSE(world.Crash(kNode1));
  // Scheduled while crashed: never runs, not even after the restart.
  world.Schedule(40, kNode1, [&] { ++n1; });
  world.RunUntil(35);
  ASSERT_TRUE(world.Restart(kNode1));
  world.Schedule(50, kNode1, [&] { n1 += 100; });
  world.RunUntilIdle(100);
  EXPECT_EQ(n1, 100);
  EXPECT_EQ(n2, 1);
  EXPECT_EQ(w, 1);
  EXPECT_EQ(world.events_dropped(), 3u);
  EXPECT_EQ(world.epoch(kNode1), 2u);
  world.CheckInvariants();
}

TEST(WorldTest, LifecycleChangesOnlyFromTheRightState) {
  World world(1);
  world.AddNode(kNode1);
  EXPECT_FALSE(world.Resume(kNode1));
  EXPECT_FALSE(world.Restart(kNode1));
  EXPECT_TRUE(world.Pause(kNode1));
  EXPECT_TRUE(world.Crash(kNode1));  // a paused node can crash
  EXPECT_FALSE(world.Pause(kNode1));
  EXPECT_FALSE(world.Resume(kNode1));
  EXPECT_TRUE(world.Restart(kNode1));
  EXPECT_TRUE(world.IsUp(kNode1));
}

TEST(WorldTest, ScheduleCrashCrashesAfterTheRunningEvent) {
  World world(1);
  world.AddNode(kNode1);
  bool up_after_call = false;
  world.Schedule(5, kNode1, [&] {
    world.ScheduleCrash(kNode1);
    up_after_call = world.IsUp(kNode1);
  });
  world.RunUntilIdle(10);
  EXPECT_TRUE(up_after_call);
  EXPECT_TRUE(world.IsCrashed(kNode1));
  EXPECT_EQ(world.now_us(), 5);
}

TEST(WorldTest, ListenersHearEveryChangeInOrder) {
  World world(1);
  world.AddNode(kNode1);
  std::vector<std::string> heard;
  world.AddLifecycleListener([&](NodeId node, LifecycleChange change) {
    heard.push_back(std::to_string(node.value()) + ":" +
                    std::string(LifecycleChangeName(change)));
  });
  world.Pause(kNode1);
  world.Resume(kNode1);
  world.Crash(kNode1);
  world.Restart(kNode1);
  world.Restart(kNode1);  // no-op, not heard
  EXPECT_EQ(heard, (std::vector<std::string>{"1:pause", "1:resume", "1:crash",
                                             "1:restart"}));
}

TEST(WorldTest, SubStreamsAreIndependentAndSeeded) {
  World a(42), b(42), c(43);
  Rng a_net = a.Stream("network");
  Rng b_net = b.Stream("network");
  Rng c_net = c.Stream("network");
  const uint64_t first = a_net.Next();
  EXPECT_EQ(first, b_net.Next());
  EXPECT_NE(first, c_net.Next());
  EXPECT_NE(a.Stream("disk").Next(), a.Stream("network").Next());
  EXPECT_NE(a.NodeStream(kNode1).Next(), a.NodeStream(kNode2).Next());
  EXPECT_EQ(a.NodeStream(kNode1).Next(), b.NodeStream(kNode1).Next());
}

// A little self-scheduling workload whose shape depends on the seed.
uint64_t RunChaos(uint64_t seed, uint64_t* events) {
  World world(seed);
  for (uint64_t i = 1; i <= 3; ++i) world.AddNode(NodeId(i));
  Rng rng = world.Stream("workload");
  std::function<void()> tick;
  tick = [&] {
    const NodeId node(rng.Range(1, 3));
    // Exactly one continuation, so the load stays constant.
    if (rng.Chance(1, 4)) {
      world.ScheduleAfter(static_cast<int64_t>(rng.Range(1, 5)), kNoNode, tick);
    } else {
      world.ScheduleAfter(static_cast<int64_t>(rng.Range(1, 100)), node, tick);
    }
  };
  Rng fault_rng = world.Stream("faults");
  std::function<void()> faults;
  faults = [&] {
    const NodeId node(fault_rng.Range(1, 3));
    if (fault_rng.Chance(1, 2)) {
      world.Pause(node);
    } else {
      world.Resume(node);
    }
    world.ScheduleAfter(static_cast<int64_t>(fault_rng.Range(1, 200)), kNoNode,
                        faults);
  };
  world.Schedule(0, kNoNode, faults);
  world.Schedule(0, kNoNode, tick);
  world.Schedule(0, kNoNode, tick);
  world.RunUntil(20'000);
  *events = world.events_run();
  return world.event_hash();
}

TEST(WorldTest, SameSeedSameEventSequence) {
  uint64_t events_a = 0, events_b = 0, events_c = 0;
  const uint64_t a = RunChaos(7, &events_a);
  const uint64_t b = RunChaos(7, &events_b);
  const uint64_t c = RunChaos(8, &events_c);
  EXPECT_EQ(a, b);
  EXPECT_EQ(events_a, events_b);
  EXPECT_GT(events_a, 100u);
  EXPECT_NE(a, c);
}

TEST(WorldTest, CurrentEventNamesTheRunningEvent) {
  World world(1);
  world.AddNode(kNode2);
  std::vector<uint64_t> owners;
  world.Schedule(7, kNode2, [&] {
    owners.push_back(world.current_event().owner.value());
    EXPECT_EQ(world.current_event().at_us, 7);
  });
  world.Schedule(8, kNoNode, [&] {
    owners.push_back(world.current_event().owner.value());
  });
  world.RunUntilIdle(10);
  EXPECT_EQ(owners, (std::vector<uint64_t>{2, 0}));
}

TEST(WorldTest, StepUntilRunsOnlyEventsUpToTheLimit) {
  World world(1);
  int ran = 0;
  world.Schedule(10, kNoNode, [&] { ++ran; });
  world.Schedule(20, kNoNode, [&] { ++ran; });
  EXPECT_TRUE(world.StepUntil(15));
  EXPECT_FALSE(world.StepUntil(15));
  EXPECT_EQ(ran, 1);
  EXPECT_EQ(world.now_us(), 10);
}

TEST(WorldTest, AfterEventHookRunsAfterEveryEventAndLifecycleChange) {
  World world(1);
  world.AddNode(kNode1);
  std::vector<std::string> log;
  world.SetAfterEventHook([&] { log.push_back("check"); });
  world.Schedule(1, kNoNode, [&] { log.push_back("event"); });
  world.Schedule(2, kNoNode, [&] { world.Crash(kNode1); });
  world.RunUntilIdle(10);
  EXPECT_EQ(log,
            (std::vector<std::string>{"event", "check", "check", "check"}));
}

TEST(WorldDeathTest, SchedulingInThePastCrashes) {
  World world(1);
  world.RunUntil(10);
  EXPECT_DEATH(world.Schedule(5, kNoNode, [] {}), "in the past");
}

}  // namespace
}  // namespace blixard::sim

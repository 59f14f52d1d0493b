// The scripted Env keeps the contracts of core/env.h: the Host tests built
// on it prove nothing if it promised more (or less) than a real Env.
#include "core/host/testing/scripted_env.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/base/status_matchers.h"
#include "core/testing/log_store_conformance.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace blixard::host::testing {
namespace {

using ::blixard::testing::LogModel;
using ::blixard::testing::LogStoreConformanceTest;
using ::blixard::testing::MakeEntries;
using ::testing::ElementsAre;

// ------------------------------------------------ the LogStore conformance suite

class ScriptedHarness final : public ::blixard::testing::LogStoreHarness {
 public:
  ScriptedHarness() : store_(std::make_unique<ScriptedLogStore>()) {}
  LogStore& store() override { return *store_; }
  void Settle() override { store_->CompleteAll(); }
  void Reopen() override {
    LogModel durable = store_->durable();
    store_ = std::make_unique<ScriptedLogStore>(std::move(durable));
  }

 private:
  std::unique_ptr<ScriptedLogStore> store_;
};

INSTANTIATE_TEST_SUITE_P(Scripted, LogStoreConformanceTest,
                         ::testing::Values(::blixard::testing::LogStoreConformanceParam{
                             "Scripted", [] { return std::make_unique<ScriptedHarness>(); }}),
                         ::blixard::testing::LogStoreConformanceParamName);

TEST(ScriptedLogStoreTest, WritesStayPendingUntilCompletedInFifoOrder) {
  ScriptedLogStore store;
  std::vector<int> done;
  LogWrite first;
  first.entries = MakeEntries(1, 2, 1);
  LogWrite second;
  second.entries = MakeEntries(3, 1, 1);
  store.Write(std::move(first), [&] { done.push_back(1); });
  store.Write(std::move(second), [&] { done.push_back(2); });
  EXPECT_EQ(store.pending(), 2u);
  EXPECT_TRUE(done.empty());
  // Recovery reads serve only what completed.
  ASSERT_OK_AND_ASSIGN(Index last, store.LastIndex());
  EXPECT_EQ(last, Index(0));
  store.CompleteNext();
  EXPECT_THAT(done, ElementsAre(1));
  ASSERT_OK_AND_ASSIGN(last, store.LastIndex());
  EXPECT_EQ(last, Index(2));
  store.CompleteNext();
  EXPECT_THAT(done, ElementsAre(1, 2));
  EXPECT_EQ(store.writes().size(), 2u);
  EXPECT_TRUE(store.writes()[1].completed);
}

TEST(ScriptedLogStoreTest, CrashLosesPendingWritesAndTheirCallbacks) {
  ScriptedLogStore store;
  int done = 0;
  LogWrite first;
  first.entries = MakeEntries(1, 1, 1);
  LogWrite second;
  second.entries = MakeEntries(2, 1, 1);
  store.Write(std::move(first), [&] { ++done; });
  store.CompleteNext();
  store.Write(std::move(second), [&] { ++done; });
  store.Crash();
  EXPECT_EQ(store.pending(), 0u);
  EXPECT_EQ(done, 1);
  ASSERT_OK_AND_ASSIGN(Index last, store.LastIndex());
  EXPECT_EQ(last, Index(1));
  // The lost write no longer constrains the next one: index 2 again.
  LogWrite again;
  again.entries = MakeEntries(2, 1, 2);
  store.Write(std::move(again), [&] { ++done; });
  store.CompleteAll();
  EXPECT_EQ(done, 2);
}

TEST(ScriptedLogStoreTest, FailedReadsReportTheError) {
  ScriptedLogStore store;
  store.FailReads(absl::DataLossError("lying log"));
  EXPECT_EQ(store.ReadHardState().status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(store.LastIndex().status().code(), absl::StatusCode::kDataLoss);
}

// ------------------------------------------------ Clock and Timers

TEST(ScriptedTimersTest, FireInDeadlineThenArmOrderWithTheClockAtTheDeadline) {
  ManualClock clock(100);
  ScriptedTimers timers(&clock);
  std::vector<std::pair<int, MonoMicros>> fired;
  timers.ArmAt(1, 300, [&] { fired.emplace_back(1, clock.now()); });
  timers.ArmAt(2, 200, [&] { fired.emplace_back(2, clock.now()); });
  timers.ArmAt(3, 300, [&] { fired.emplace_back(3, clock.now()); });
  timers.ArmAfter(4, 0, [&] { fired.emplace_back(4, clock.now()); });  // never inside Arm
  EXPECT_TRUE(fired.empty());
  EXPECT_EQ(timers.AdvanceTo(250), 2u);
  EXPECT_EQ(clock.now(), 250);
  EXPECT_EQ(timers.AdvanceTo(1000), 2u);
  EXPECT_THAT(fired,
              ElementsAre(std::make_pair(4, MonoMicros{100}), std::make_pair(2, MonoMicros{200}),
                          std::make_pair(1, MonoMicros{300}), std::make_pair(3, MonoMicros{300})));
}

TEST(ScriptedTimersTest, ReArmReplacesAndCallbacksMayReArmTheirOwnId) {
  ManualClock clock;
  ScriptedTimers timers(&clock);
  int old_runs = 0;
  int ticks = 0;
  timers.ArmAt(7, 10, [&] { ++old_runs; });
  std::function<void()> tick = [&] {
    ++ticks;
    timers.ArmAfter(7, 10, tick);
  };
  timers.ArmAt(7, 10, tick);
  timers.AdvanceTo(55);
  EXPECT_EQ(old_runs, 0);
  EXPECT_EQ(ticks, 5);  // 10, 20, 30, 40, 50
  EXPECT_EQ(timers.DeadlineOf(7), MonoMicros{60});
  EXPECT_TRUE(timers.Disarm(7));
  EXPECT_FALSE(timers.Disarm(7));
  EXPECT_FALSE(timers.FireNext());
}

TEST(ManualClockTest, NeverGoesBackwards) {
  ManualClock clock(10);
  clock.Set(10);
  EXPECT_DEATH(clock.Set(9), "backwards");
}

// ------------------------------------------------ Transport

TEST(ScriptedNetworkTest, SendRecordsAndDeliversOnlyWhenTold) {
  ScriptedNetwork network;
  ScriptedTransport a(NodeId(1), &network);
  ScriptedTransport b(NodeId(2), &network);
  std::vector<std::string> got;
  b.SetReceiver([&](Packet&& packet) {
    EXPECT_EQ(packet.from, NodeId(1));  // stamped by the transport
    got.push_back(packet.bytes);
  });
  EXPECT_EQ(a.SendBytes(NodeId(2), "x"), Transport::SendResult::kQueued);
  EXPECT_EQ(a.SendBytes(NodeId(2), "y"), Transport::SendResult::kQueued);
  EXPECT_EQ(a.SendBytes(NodeId(9), "z"), Transport::SendResult::kUnreachable);
  EXPECT_TRUE(got.empty());
  EXPECT_EQ(a.QueuedPackets(NodeId(2)), 2u);
  ASSERT_EQ(network.in_flight().size(), 2u);
  EXPECT_TRUE(network.Drop(network.in_flight().front().sequence));
  EXPECT_EQ(network.DeliverAll(), 1u);
  EXPECT_THAT(got, ElementsAre("y"));
  EXPECT_EQ(network.history().size(), 2u);
  EXPECT_EQ(a.QueuedPackets(NodeId(2)), 0u);
}

TEST(ScriptedNetworkTest, BulkBytesAreRecordedAsBulkAndDeliveredAsBytes) {
  ScriptedNetwork network;
  ScriptedTransport a(NodeId(1), &network);
  ScriptedTransport b(NodeId(2), &network);
  std::vector<std::string> got;
  b.SetReceiver([&](Packet&& packet) {
    EXPECT_EQ(packet.kind, Packet::Kind::kBytes);
    got.push_back(packet.bytes);
  });
  EXPECT_EQ(a.SendBytes(NodeId(2), "control"), Transport::SendResult::kQueued);
  EXPECT_EQ(a.SendBulk(NodeId(2), "bulk"), Transport::SendResult::kQueued);
  EXPECT_EQ(a.SendBulk(NodeId(9), "z"), Transport::SendResult::kUnreachable);
  ASSERT_EQ(network.in_flight().size(), 2u);
  EXPECT_FALSE(network.in_flight()[0].bulk);
  EXPECT_TRUE(network.in_flight()[1].bulk);
  EXPECT_EQ(network.DeliverAll(), 2u);
  EXPECT_THAT(got, ElementsAre("control", "bulk"));
  EXPECT_TRUE(network.history()[1].bulk);
}

TEST(ScriptedNetworkTest, PacketsToANodeWithoutReceiverAreDropped) {
  ScriptedNetwork network;
  ScriptedTransport a(NodeId(1), &network);
  ScriptedTransport b(NodeId(2), &network);
  a.SendBytes(NodeId(2), "lost");
  EXPECT_EQ(network.DeliverAll(), 1u);
  int got = 0;
  b.SetReceiver([&](Packet&&) { ++got; });
  EXPECT_EQ(got, 0);
  b.ClearReceiver();
  b.SetReceiver([&](Packet&&) { ++got; });  // a restarted Host registers again
  a.SendBytes(NodeId(2), "kept");
  network.DeliverAll();
  EXPECT_EQ(got, 1);
}

// ------------------------------------------------ Executor

TEST(ScriptedExecutorTest, StartStopAndEventsFollowTheContract) {
  ScriptedExecutor executor;
  std::vector<WorkEvent::State> events;
  executor.SetCallback([&](const WorkEvent& event) { events.push_back(event.state); });
  WorkSpec spec;
  spec.id = "t1";
  spec.command = "true";
  EXPECT_OK(executor.Start(spec));
  EXPECT_EQ(executor.Start(spec).code(), absl::StatusCode::kAlreadyExists);
  WorkSpec bad;
  bad.id = "t2";
  EXPECT_EQ(executor.Start(bad).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(events.empty());  // never inside Start
  EXPECT_THAT(executor.Running(WorkKind::kTask), ElementsAre("t1"));
  executor.EmitRunning(WorkKind::kTask, "t1");
  EXPECT_TRUE(executor.Stop(WorkKind::kTask, "t1"));
  EXPECT_FALSE(executor.Stop(WorkKind::kTask, "t1"));  // already stopping
  executor.EmitExit(WorkKind::kTask, "t1", WorkEvent::Reason::kStopped);
  EXPECT_THAT(events, ElementsAre(WorkEvent::State::kRunning, WorkEvent::State::kExited));
  EXPECT_TRUE(executor.Running(WorkKind::kTask).empty());
  EXPECT_EQ(executor.StartsOf(WorkKind::kTask, "t1"), 1u);
  executor.RefuseStarts(1, absl::ResourceExhaustedError("full"));
  EXPECT_EQ(executor.Start(spec).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_OK(executor.Start(spec));
}

}  // namespace
}  // namespace blixard::host::testing

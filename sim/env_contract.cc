#include "sim/env_contract.h"

#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace blixard::sim {

void ExpectClockContract(EnvContractHarness& harness) {
  Clock* clock = harness.clock();
  MonoMicros last = clock->NowMicros();
  for (int i = 0; i < 100; ++i) {
    const MonoMicros now = clock->NowMicros();
    EXPECT_GE(now, last);
    last = now;
  }
  harness.RunFor(5 * kMicrosPerMilli);
  EXPECT_GE(clock->NowMicros(), last + 5 * kMicrosPerMilli);
}

void ExpectTimersContract(EnvContractHarness& harness) {
  Clock* clock = harness.clock();
  Timers* timers = harness.timers();
  std::vector<std::string> fired;
  auto record = [&fired](std::string what) {
    return [&fired, what] { fired.push_back(what); };
  };
  const MonoMicros base = clock->NowMicros();

  // Earlier deadlines first; equal deadlines in arm order.
  timers->ArmAt(9001, base + 3000, record("c1"));
  timers->ArmAt(9002, base + 1000, record("a"));
  timers->ArmAt(9003, base + 3000, record("c2"));
  timers->ArmAt(9004, base + 2000, record("b"));
  timers->ArmAt(9005, base + 3000, record("c3"));
  // Re-arming replaces; disarming cancels.
  timers->ArmAt(9006, base + 1500, record("replaced"));
  timers->ArmAt(9006, base + 2500, record("rearmed"));
  timers->ArmAt(9007, base + 1200, record("disarmed"));
  EXPECT_TRUE(timers->IsArmed(9007));
  EXPECT_TRUE(timers->Disarm(9007));
  EXPECT_FALSE(timers->Disarm(9007));
  EXPECT_FALSE(timers->IsArmed(9007));
  harness.RunFor(10 * kMicrosPerMilli);
  EXPECT_EQ(fired,
            (std::vector<std::string>{"a", "b", "rearmed", "c1", "c2", "c3"}));
  for (Timers::TimerId id = 9001; id <= 9006; ++id) {
    EXPECT_FALSE(timers->IsArmed(id)) << id;
  }

  // A callback may re-arm its own id; it fires at or after its deadline.
  int ticks = 0;
  bool early = false;
  std::function<void()> tick;
  MonoMicros deadline = clock->NowMicros() + 1000;
  tick = [&] {
    if (clock->NowMicros() < deadline) early = true;
    if (++ticks < 5) {
      deadline = clock->NowMicros() + 1000;
      timers->ArmAt(9010, deadline, tick);
    }
  };
  timers->ArmAt(9010, deadline, tick);
  harness.RunFor(20 * kMicrosPerMilli);
  EXPECT_EQ(ticks, 5);
  EXPECT_FALSE(early);

  // A deadline in the past fires as soon as possible, but not inside ArmAt.
  fired.clear();
  timers->ArmAt(9020, clock->NowMicros() - 1000, record("late"));
  EXPECT_TRUE(fired.empty());
  harness.RunFor(1 * kMicrosPerMilli);
  EXPECT_EQ(fired, (std::vector<std::string>{"late"}));
}

void ExpectTransportContract(EnvContractHarness& harness) {
  Transport* a = harness.transport_a();
  Transport* b = harness.transport_b();
  EXPECT_NE(a->self(), b->self());
  std::vector<Packet> at_a, at_b;
  a->SetReceiver([&at_a](Packet p) { at_a.push_back(std::move(p)); });
  b->SetReceiver([&at_b](Packet p) { at_b.push_back(std::move(p)); });

  raft::Message message;
  message.set_type(raft::MSG_APPEND);
  message.set_term(7);
  message.set_from(a->self().value());
  message.set_to(b->self().value());
  message.add_entries()->set_data("entry");
  EXPECT_EQ(a->Send(b->self(), message), Transport::SendResult::kQueued);
  EXPECT_EQ(b->SendBytes(a->self(), "chunk"), Transport::SendResult::kQueued);
  // The bulk lane delivers like SendBytes, to the same receiver; its order
  // relative to the control lane is not promised.
  EXPECT_EQ(a->SendBulk(b->self(), "bulk"), Transport::SendResult::kQueued);
  EXPECT_TRUE(at_a.empty());  // never delivered inside Send
  EXPECT_TRUE(at_b.empty());
  EXPECT_EQ(a->Send(harness.unknown_peer(), message),
            Transport::SendResult::kUnreachable);
  EXPECT_EQ(a->SendBulk(harness.unknown_peer(), "bulk"),
            Transport::SendResult::kUnreachable);
  harness.RunFor(500 * kMicrosPerMilli);

  ASSERT_EQ(at_b.size(), 2u);
  const size_t raft_at = at_b[0].kind == Packet::Kind::kRaft ? 0 : 1;
  for (const Packet& packet : at_b) {
    EXPECT_EQ(packet.from, a->self());
    EXPECT_EQ(packet.to, b->self());
  }
  EXPECT_EQ(at_b[raft_at].kind, Packet::Kind::kRaft);
  EXPECT_EQ(at_b[raft_at].raft.SerializeAsString(),
            message.SerializeAsString());
  EXPECT_EQ(at_b[1 - raft_at].kind, Packet::Kind::kBytes);
  EXPECT_EQ(at_b[1 - raft_at].bytes, "bulk");
  ASSERT_EQ(at_a.size(), 1u);
  EXPECT_EQ(at_a[0].from, b->self());
  EXPECT_EQ(at_a[0].kind, Packet::Kind::kBytes);
  EXPECT_EQ(at_a[0].bytes, "chunk");
  EXPECT_EQ(a->QueuedPackets(b->self()), 0u);
  EXPECT_EQ(b->QueuedPackets(a->self()), 0u);
}

namespace {

WorkSpec Sleep(std::string id, int64_t seconds, int64_t timeout_us) {
  WorkSpec spec;
  spec.kind = WorkKind::kTask;
  spec.id = std::move(id);
  spec.command = "sleep";
  spec.args = {std::to_string(seconds)};
  spec.timeout_us = timeout_us;
  return spec;
}

std::vector<std::string> Heard(const std::vector<WorkEvent>& events, absl::string_view id) {
  std::vector<std::string> out;
  for (const WorkEvent& e : events) {
    if (e.id != id) continue;
    out.push_back(e.state == WorkEvent::State::kRunning ? "running" : "exited");
  }
  return out;
}

}  // namespace

void ExpectExecutorContract(EnvContractHarness& harness) {
  Executor* executor = harness.executor();
  std::vector<WorkEvent> first;
  executor->SetCallback([&first](const WorkEvent& e) { first.push_back(e); });

  // Bad specs start nothing.
  WorkSpec bad = Sleep("", 1, 0);
  EXPECT_EQ(executor->Start(bad).code(), absl::StatusCode::kInvalidArgument);
  bad = Sleep("b", 1, 0);
  bad.command.clear();
  EXPECT_EQ(executor->Start(bad).code(), absl::StatusCode::kInvalidArgument);
  bad = Sleep("b", 1, -1);
  EXPECT_EQ(executor->Start(bad).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(executor->Running(WorkKind::kTask).empty());

  // A task that outlives its timeout: running, then one exit, timed out, no
  // earlier than the timeout on the node's clock; never inside Start.
  ASSERT_TRUE(executor->Start(Sleep("c1", 10, 200 * kMicrosPerMilli)).ok());
  EXPECT_EQ(executor->Start(Sleep("c1", 10, 0)).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(first.empty());
  EXPECT_EQ(executor->Running(WorkKind::kTask), std::vector<std::string>{"c1"});
  EXPECT_TRUE(executor->Running(WorkKind::kVm).empty());
  harness.RunFor(1 * kMicrosPerSecond);
  EXPECT_EQ(Heard(first, "c1"), (std::vector<std::string>{"running", "exited"}));
  if (first.size() == 2) {
    EXPECT_EQ(first[1].reason, WorkEvent::Reason::kTimedOut);
    EXPECT_GE(first[1].duration_us, 200 * kMicrosPerMilli);
  }
  EXPECT_TRUE(executor->Running(WorkKind::kTask).empty());

  // Stop: one exit, reason kStopped; a second Stop is refused.
  ASSERT_TRUE(executor->Start(Sleep("c2", 10, 0)).ok());
  harness.RunFor(100 * kMicrosPerMilli);
  EXPECT_TRUE(executor->Stop(WorkKind::kTask, "c2"));
  EXPECT_FALSE(executor->Stop(WorkKind::kTask, "c2"));
  EXPECT_FALSE(executor->Stop(WorkKind::kTask, "nothing"));
  harness.RunFor(1 * kMicrosPerSecond);
  ASSERT_EQ(Heard(first, "c2"), (std::vector<std::string>{"running", "exited"}));
  EXPECT_EQ(first.back().reason, WorkEvent::Reason::kStopped);

  // Work survives a crash of the node process: the new process finds it in
  // Running(), may not start it twice, and hears its exit (once) at the time
  // its own timeout says, counted from the original Start.
  const MonoMicros started = harness.clock()->NowMicros();
  ASSERT_TRUE(executor->Start(Sleep("c3", 10, 500 * kMicrosPerMilli)).ok());
  harness.RunFor(100 * kMicrosPerMilli);
  const size_t heard_before = first.size();
  harness.RestartProcess();
  EXPECT_EQ(executor->Running(WorkKind::kTask), std::vector<std::string>{"c3"});
  EXPECT_EQ(executor->Start(Sleep("c3", 10, 0)).code(), absl::StatusCode::kAlreadyExists);
  std::vector<WorkEvent> second;
  executor->SetCallback([&second](const WorkEvent& e) { second.push_back(e); });
  EXPECT_TRUE(second.empty());  // never inside SetCallback
  harness.RunFor(1 * kMicrosPerSecond);
  EXPECT_EQ(first.size(), heard_before);  // the dead process hears nothing
  ASSERT_FALSE(second.empty());
  EXPECT_EQ(second.back().id, "c3");
  EXPECT_EQ(second.back().state, WorkEvent::State::kExited);
  EXPECT_EQ(second.back().reason, WorkEvent::Reason::kTimedOut);
  EXPECT_GE(second.back().duration_us, 500 * kMicrosPerMilli);
  EXPECT_LT(harness.clock()->NowMicros() - started, 500 * kMicrosPerMilli + 1 * kMicrosPerSecond);
  int exits = 0;
  for (const WorkEvent& e : second) exits += e.state == WorkEvent::State::kExited ? 1 : 0;
  EXPECT_EQ(exits, 1);
  EXPECT_TRUE(executor->Running(WorkKind::kTask).empty());
}

}  // namespace blixard::sim

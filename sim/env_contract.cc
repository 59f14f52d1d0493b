#include "sim/env_contract.h"

#include <string>
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
  EXPECT_TRUE(at_a.empty());  // never delivered inside Send
  EXPECT_TRUE(at_b.empty());
  EXPECT_EQ(a->Send(harness.unknown_peer(), message),
            Transport::SendResult::kUnreachable);
  harness.RunFor(500 * kMicrosPerMilli);

  ASSERT_EQ(at_b.size(), 1u);
  EXPECT_EQ(at_b[0].from, a->self());
  EXPECT_EQ(at_b[0].to, b->self());
  EXPECT_EQ(at_b[0].kind, Packet::Kind::kRaft);
  EXPECT_EQ(at_b[0].raft.SerializeAsString(), message.SerializeAsString());
  ASSERT_EQ(at_a.size(), 1u);
  EXPECT_EQ(at_a[0].from, b->self());
  EXPECT_EQ(at_a[0].kind, Packet::Kind::kBytes);
  EXPECT_EQ(at_a[0].bytes, "chunk");
  EXPECT_EQ(a->QueuedPackets(b->self()), 0u);
  EXPECT_EQ(b->QueuedPackets(a->self()), 0u);
}

}  // namespace blixard::sim

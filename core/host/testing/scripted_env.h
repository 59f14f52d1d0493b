// A scripted Env (core/env.h) for unit tests of the Host: nothing happens
// unless the test says so. Time moves only when the test sets it, a timer
// fires only when the test advances to it, a packet arrives only when the
// test delivers it, a durable write completes only when the test completes
// it, and work changes state only when the test emits an event. Every
// interface records what the Host asked of it so tests can inspect it.
//
// The parts keep the contracts of core/env.h (and CHECK the Host's side of
// them, the REQUIRES lines), so a Host that passes here relies on nothing a
// real Env does not promise:
//   ManualClock       never goes backwards (CHECK on Set/Advance).
//   ScriptedTimers    fire in (deadline, arm order), never inside Arm*, at or
//                     after the deadline (the clock is moved to a timer's
//                     deadline before it fires when the test advances).
//   ScriptedNetwork / ScriptedTransport
//                     Send records the packet in flight (stamped with
//                     from/to) and never delivers inside Send; the test
//                     delivers, drops or injects packets one at a time.
//   ScriptedLogStore  writes stay pending until the test completes them, in
//                     FIFO order; a completion makes the write durable and
//                     runs its callback (outside Write); recovery reads
//                     serve what completed (OUT_OF_RANGE outside the log);
//                     Crash() loses what did not.
//   ScriptedExecutor  records Start/Stop; the test emits WorkEvents.
//
// Test-only. Not thread-safe: everything runs on the test's thread, which
// is the Host's thread.
//
//   ScriptedNetwork network;
//   ScriptedEnv env(NodeId(1), &network);
//   Host host(options, env.env(), &logger);
//   ASSERT_OK(host.Start());
//   env.store().CompleteAll();               // the bootstrap write lands
//   env.timers().AdvanceTo(2 * kMicrosPerSecond);  // ticks: an election
#ifndef BLIXARD_CORE_HOST_TESTING_SCRIPTED_ENV_H_
#define BLIXARD_CORE_HOST_TESTING_SCRIPTED_ENV_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/base/types.h"
#include "core/env.h"
#include "core/proto/raft.pb.h"
#include "core/testing/log_store_conformance.h"

namespace blixard::host::testing {

// Bounds on the loops that run until something settles: a Host that keeps
// producing work this long without settling is a bug, and the test should
// fail with a CHECK rather than hang.
inline constexpr size_t kTimerFiresPerRunMax = 100'000;
inline constexpr size_t kDeliveriesPerRunMax = 1'000'000;
inline constexpr size_t kCompletionsPerRunMax = 1'000'000;

// ---------------------------------------------------------------- Clock

// A clock that moves only when the test moves it.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(MonoMicros start = 0) : now_(start) {}

  MonoMicros NowMicros() override { return now_; }
  MonoMicros now() const { return now_; }

  // REQUIRES: to >= now() (CHECKed: a monotonic clock never goes back).
  void Set(MonoMicros to);
  // REQUIRES: delta_us >= 0.
  void Advance(int64_t delta_us);

 private:
  MonoMicros now_;
};

// ---------------------------------------------------------------- Timers

// Timers on a ManualClock. Nothing fires until the test calls RunDue,
// FireNext, AdvanceTo or AdvanceBy.
class ScriptedTimers final : public Timers {
 public:
  // `clock` is borrowed and must outlive the timers.
  explicit ScriptedTimers(ManualClock* clock);

  // Timers. REQUIRES are CHECKed (see core/env.h).
  void ArmAt(TimerId id, MonoMicros deadline, Callback callback) override;
  void ArmAfter(TimerId id, int64_t delay_us, Callback callback) override;
  bool Disarm(TimerId id) override;
  bool IsArmed(TimerId id) const override;

  size_t armed() const { return timers_.size(); }
  // The deadline of `id`, or nullopt when it is not armed.
  std::optional<MonoMicros> DeadlineOf(TimerId id) const;
  // The earliest deadline of any armed timer, or nullopt when none is armed.
  std::optional<MonoMicros> NextDeadline() const;

  // Fires the earliest armed timer (ties: the first armed), first moving
  // the clock to its deadline when that is later than now. Returns false
  // when no timer is armed.
  bool FireNext();
  // Fires every timer whose deadline is at or before now, in order,
  // including timers the callbacks arm for a deadline at or before now.
  // Returns how many fired. CHECK-fails after kTimerFiresPerRunMax.
  size_t RunDue();
  // Moves the clock to `to` one deadline at a time, firing every timer due
  // on the way in order (the clock reads each timer's deadline when it
  // fires), then leaves the clock at `to`. REQUIRES: to >= now. Returns how
  // many fired.
  size_t AdvanceTo(MonoMicros to);
  size_t AdvanceBy(int64_t delta_us);

  // A crash: every timer is forgotten without running.
  void DisarmAll() { timers_.clear(); }

 private:
  struct Armed {
    MonoMicros deadline;
    uint64_t sequence;  // arm order, for equal deadlines
    Callback callback;
  };
  // The id of the timer that fires next, if any.
  std::optional<TimerId> Next() const;
  void Fire(TimerId id);

  ManualClock* clock_;
  uint64_t next_sequence_ = 0;
  std::map<TimerId, Armed> timers_;
};

// ---------------------------------------------------------------- Network

class ScriptedTransport;

// A packet sent and not yet delivered or dropped, with the network-wide
// sequence number the test names it by.
struct SentPacket {
  uint64_t sequence = 0;
  Packet packet;
  // Sent with SendBulk (the bulk lane). The network holds, bounds and
  // delivers both lanes alike: only the record tells them apart.
  bool bulk = false;
};

using PacketPredicate = std::function<bool(const Packet& packet)>;

// The wire between ScriptedTransports: it holds every packet in flight, in
// send order, until the test delivers or drops it, and keeps a copy of
// every packet ever sent.
class ScriptedNetwork {
 public:
  ScriptedNetwork() = default;
  ScriptedNetwork(const ScriptedNetwork&) = delete;
  ScriptedNetwork& operator=(const ScriptedNetwork&) = delete;

  // Makes `id` reachable: Send to an id never added (and without a
  // transport) returns kUnreachable. A transport adds its own node. A test
  // that plays a peer by hand adds the peer's id and reads what was sent to
  // it from in_flight().
  void AddNode(NodeId id) { known_.insert(id); }

  // Packets in flight, in send order.
  const std::deque<SentPacket>& in_flight() const { return in_flight_; }
  // Every packet ever sent, in send order (delivered, dropped or not).
  const std::vector<SentPacket>& history() const { return history_; }
  // Packets in flight that match.
  std::vector<const SentPacket*> InFlightWhere(const PacketPredicate& predicate) const;
  size_t CountInFlight(const PacketPredicate& predicate) const;
  size_t CountHistory(const PacketPredicate& predicate) const;

  // Delivers the packet in flight with this sequence number to its `to`
  // node's receiver (dropped when that node has no transport or no
  // receiver). Returns false when no such packet is in flight.
  bool Deliver(uint64_t sequence);
  // Drops it. Returns false when no such packet is in flight.
  bool Drop(uint64_t sequence);
  // Delivers, one at a time in send order, every packet in flight that
  // matches, including matching packets sent by the receivers meanwhile,
  // until none is left. Returns how many were delivered.
  size_t DeliverWhere(const PacketPredicate& predicate);
  size_t DeliverAll();
  // Drops every packet in flight that matches; returns how many.
  size_t DropWhere(const PacketPredicate& predicate);
  // Delivers a packet the test built (a peer played by hand) to the
  // receiver of `packet.to` at once, as if it had just arrived. Returns
  // false when nobody received it.
  bool Inject(Packet packet);

  // Packets in flight from `from` to `to`.
  size_t Queued(NodeId from, NodeId to) const;

 private:
  friend class ScriptedTransport;
  void Attach(NodeId id, ScriptedTransport* transport);
  void Detach(NodeId id);
  Transport::SendResult Send(Packet packet, bool bulk);
  bool Receive(Packet&& packet);

  std::set<NodeId> known_;
  std::map<NodeId, ScriptedTransport*> transports_;
  uint64_t next_sequence_ = 1;
  std::deque<SentPacket> in_flight_;
  std::vector<SentPacket> history_;
};

// One node's end of a ScriptedNetwork.
class ScriptedTransport final : public Transport {
 public:
  // `network` is borrowed and must outlive the transport. REQUIRES: no
  // other transport for `self` is attached to it.
  ScriptedTransport(NodeId self, ScriptedNetwork* network);
  ~ScriptedTransport() override;
  ScriptedTransport(const ScriptedTransport&) = delete;
  ScriptedTransport& operator=(const ScriptedTransport&) = delete;

  NodeId self() const override { return self_; }
  void SetReceiver(Receiver receiver) override;
  SendResult Send(NodeId to, raft::Message message) override;
  SendResult SendBytes(NodeId to, std::string bytes) override;
  // Like SendBytes, recorded as bulk (SentPacket::bulk).
  SendResult SendBulk(NodeId to, std::string bytes) override;
  size_t QueuedPackets(NodeId to) const override;

  bool has_receiver() const { return static_cast<bool>(receiver_); }
  // A crash: the receiver goes (a restarted Host registers again).
  void ClearReceiver() { receiver_ = nullptr; }

 private:
  friend class ScriptedNetwork;
  SendResult SendHostBytes(NodeId to, std::string bytes, bool bulk);

  NodeId self_;
  ScriptedNetwork* network_;
  Receiver receiver_;
};

// ---------------------------------------------------------------- LogStore

// Durable state is a testing::LogModel (the reference semantics of a
// LogWrite). Write() CHECKs the write's REQUIRES against the state after
// every earlier write (LogModel::Apply CHECKs them) and queues it; nothing
// is durable until the test completes it.
class ScriptedLogStore final : public LogStore {
 public:
  // One write the Host queued, as it queued it.
  struct RecordedWrite {
    uint64_t sequence = 0;  // 0, 1, 2... in Write order
    LogWrite write;
    bool completed = false;
  };

  // A store holding `durable` (default: a new, empty store).
  explicit ScriptedLogStore(::blixard::testing::LogModel durable = {});
  ScriptedLogStore(const ScriptedLogStore&) = delete;
  ScriptedLogStore& operator=(const ScriptedLogStore&) = delete;

  // LogStore. Callbacks run in CompleteNext(), so PollCompletions has
  // nothing to do (it only counts the calls).
  void Write(LogWrite write, Done done) override;
  void PollCompletions() override { ++polls_; }
  absl::StatusOr<raft::HardState> ReadHardState() override;
  absl::StatusOr<std::optional<raft::Snapshot>> ReadSnapshot() override;
  absl::StatusOr<Index> FirstIndex() override;
  absl::StatusOr<Index> LastIndex() override;
  absl::StatusOr<std::vector<raft::Entry>> ReadEntries(Index lo, Index hi) override;
  absl::StatusOr<Term> ReadTerm(Index index) override;
  absl::StatusOr<std::optional<StoreIdentity>> ReadIdentity() override;

  // Writes queued and not completed.
  size_t pending() const { return pending_.size(); }
  // The i-th pending write (0: the oldest). REQUIRES: i < pending().
  const LogWrite& PendingWrite(size_t i) const;
  // Makes the oldest pending write durable, then runs its callback.
  // REQUIRES: pending() > 0.
  void CompleteNext();
  // Completes writes until none is pending, including writes queued by the
  // callbacks. Returns how many completed. CHECK-fails after
  // kCompletionsPerRunMax.
  size_t CompleteAll();

  // Power loss: every pending write is lost and its callback never runs.
  void Crash();
  // The disk is replaced by an empty one (an operator wiped the data
  // directory). REQUIRES: no write pending (crash first).
  void Wipe();
  // Every later recovery read returns `status` (OK: reads work again).
  void FailReads(absl::Status status) { read_error_ = std::move(status); }

  // Every write ever queued, in order, with whether it completed.
  const std::vector<RecordedWrite>& writes() const { return writes_; }
  // What a restarted node would read.
  const ::blixard::testing::LogModel& durable() const { return durable_; }
  size_t polls() const { return polls_; }

 private:
  struct Pending {
    size_t record;  // index into writes_
    Done done;
  };

  ::blixard::testing::LogModel durable_;
  // The state after every queued write: Write() checks REQUIRES against it.
  ::blixard::testing::LogModel queued_;
  std::deque<Pending> pending_;
  std::vector<RecordedWrite> writes_;
  absl::Status read_error_;
  size_t polls_ = 0;
};

// ---------------------------------------------------------------- Executor

// Records Start and Stop; work changes state only through Emit.
class ScriptedExecutor final : public Executor {
 public:
  struct Call {
    enum class Type : uint8_t { kStart = 0, kStop = 1 };
    Type type = Type::kStart;
    WorkSpec spec;          // kStart: as given; kStop: kind and id only
    bool accepted = false;  // Start returned OK / Stop returned true
  };

  void SetCallback(Callback callback) override;
  absl::Status Start(const WorkSpec& spec) override;
  bool Stop(WorkKind kind, absl::string_view id) override;
  std::vector<std::string> Running(WorkKind kind) const override;

  // Runs the Host's callback with `event`, keeping the executor's own view
  // consistent with it. REQUIRES (CHECKed, they are the contract's): a
  // callback is registered; (kind, id) is running, not yet exited, and a
  // kRunning event is its first; an exit has a reason, a running event
  // none; output_tail within kOutputTailBytesMax.
  void Emit(const WorkEvent& event);
  // Shorthands for Emit.
  void EmitRunning(WorkKind kind, const std::string& id);
  void EmitExit(WorkKind kind, const std::string& id, WorkEvent::Reason reason,
                int32_t exit_code = 0, std::string output_tail = "", int64_t duration_us = 0);

  // The next `count` Starts fail with `status` (a full or broken node).
  void RefuseStarts(size_t count, absl::Status status);

  // Every call, in order.
  const std::vector<Call>& calls() const { return calls_; }
  // How many accepted Starts named (kind, id).
  size_t StartsOf(WorkKind kind, absl::string_view id) const;
  size_t StopsOf(WorkKind kind, absl::string_view id) const;
  bool IsRunning(WorkKind kind, absl::string_view id) const;

  // A crash: the work dies without callbacks and the callback goes.
  void Crash();

 private:
  struct Work {
    bool up = false;        // kRunning reported
    bool stopping = false;  // Stop() accepted
  };
  using Key = std::pair<WorkKind, std::string>;

  Callback callback_;
  std::map<Key, Work> running_;
  std::vector<Call> calls_;
  size_t refuse_ = 0;
  absl::Status refuse_status_;
};

// ---------------------------------------------------------------- Env

// One node's scripted Env: its own clock, timers, store and executor, and a
// transport on a shared network.
class ScriptedEnv {
 public:
  // `network` is borrowed and must outlive the env.
  ScriptedEnv(NodeId id, ScriptedNetwork* network, MonoMicros start = 0);
  ScriptedEnv(const ScriptedEnv&) = delete;
  ScriptedEnv& operator=(const ScriptedEnv&) = delete;

  Env env();
  NodeId id() const { return transport_.self(); }
  ManualClock& clock() { return clock_; }
  ScriptedTimers& timers() { return timers_; }
  ScriptedTransport& transport() { return transport_; }
  ScriptedLogStore& store() { return store_; }
  ScriptedExecutor& executor() { return executor_; }

  // What a node crash does to its Env (destroy the Host first): timers
  // forgotten, the receiver and executor callback cleared, running work
  // killed, pending writes lost. The clock and the durable store remain.
  void Crash();

 private:
  ManualClock clock_;
  ScriptedTimers timers_;
  ScriptedTransport transport_;
  ScriptedLogStore store_;
  ScriptedExecutor executor_;
};

}  // namespace blixard::host::testing

#endif  // BLIXARD_CORE_HOST_TESTING_SCRIPTED_ENV_H_

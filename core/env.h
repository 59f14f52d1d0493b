// The Env interfaces: the only way the Host reaches the world outside the
// pure core. The simulator implements them in memory with faults (sim/), the
// production runtime with epoll, TCP, SQLite and processes (net/, storage/).
// Every callback runs on the Host's single thread.
//
// Clock, Timers, Transport, LogStore, Executor: see ../shared/ARCHITECTURE.md,
// "Env: the pluggable world". Each interface is shaped so that one
// single-threaded epoll loop (timer heap, TCP, SQLite on an I/O thread,
// child processes) and one deterministic simulator (sim/) can both implement
// it without the Host noticing.
#ifndef BLIXARD_CORE_ENV_H_
#define BLIXARD_CORE_ENV_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "core/base/types.h"
#include "core/proto/raft.pb.h"

namespace blixard {

// Who a store belongs to: written with the node's first durable write (or
// on its own, before any Raft state) and checked at every start. A store
// that holds another cluster's or another node's log must never be run
// under this identity (a node whose disk was swapped or wiped could vote
// twice in a term).
struct StoreIdentity {
  uint64_t cluster_id = 0;  // REQUIRES: != 0
  NodeId node_id;           // REQUIRES: != 0
  // Drawn at random when the store is created: tells this store apart from
  // any other store the same node id ever had (a wiped disk gets a new
  // one). 0 only in stores recorded before stores had nonces.
  uint64_t store_nonce = 0;
  // Whether the cluster knows this store as its member's: a founder's store
  // from the bootstrap, a joiner's once the cluster applied its
  // MemberJoined with this nonce. Only a confirmed store votes. Goes from
  // false to true, never back. Stores from before nonces read as confirmed.
  bool confirmed = true;

  // True when both ids are set (the REQUIRES above hold).
  bool valid() const { return cluster_id != 0 && node_id != kNoNode; }

  // The same store: cluster, node and nonce (confirmation aside).
  bool SameStore(const StoreIdentity& other) const {
    return cluster_id == other.cluster_id && node_id == other.node_id &&
           store_nonce == other.store_nonce;
  }
  // Whether a store holding `this` may record `next` (LogWrite::identity):
  // the same store, and never un-confirmed.
  bool MayBecome(const StoreIdentity& next) const {
    return SameStore(next) && (next.confirmed || !confirmed);
  }

  friend bool operator==(const StoreIdentity& a, const StoreIdentity& b) {
    return a.SameStore(b) && a.confirmed == b.confirmed;
  }
  friend bool operator!=(const StoreIdentity& a, const StoreIdentity& b) {
    return !(a == b);
  }
};

// For errors and logs: "cluster 1f2e3d4c5b6a7988 node 3" (the cluster id as
// 16 hex digits, the node id in decimal).
inline std::string StoreIdentityString(const StoreIdentity& identity) {
  return absl::StrCat("cluster ",
                      absl::Hex(identity.cluster_id, absl::kZeroPad16),
                      " node ", identity.node_id.value());
}

// For errors that must tell two stores of one node apart: the above plus
// the store nonce and whether the cluster confirmed it, e.g. "cluster
// 1f2e3d4c5b6a7988 node 3 nonce 00000000000000a1 (unconfirmed)".
inline std::string StoreIdentityDetail(const StoreIdentity& identity) {
  return absl::StrCat(StoreIdentityString(identity), " nonce ",
                      absl::Hex(identity.store_nonce, absl::kZeroPad16),
                      identity.confirmed ? " (confirmed)" : " (unconfirmed)");
}

// One durable write: what the Host persists for one Raft Ready, applied
// atomically and in this order: snapshot (which drops every log entry at or
// below its index), entries (truncating any stored suffix from the first new
// index on), hard state, then compaction. The identity, when present, is
// recorded in the same atomic step.
struct LogWrite {
  // Which entries ABOVE the snapshot's index survive follows Raft Figure 13,
  // steps 6-7: all of them when the log holds the snapshot's last entry with
  // the snapshot's term (a local snapshot, or a leader's of a prefix we
  // have), none otherwise (the log is replaced; it restarts at index + 1).
  // REQUIRES: index > 0 and >= the stored snapshot's index.
  std::optional<raft::Snapshot> snapshot;
  // REQUIRES: consecutive indexes, non-decreasing terms (not below the term
  // before them); the first index is above the snapshot index and at most
  // the last index + 1.
  std::vector<raft::Entry> entries;
  // REQUIRES: once the write is applied, the stored commit index is at most
  // the last index (Raft never commits past its log; a store that finds
  // otherwise at start-up reports DATA_LOSS: the log lost its tail).
  std::optional<raft::HardState> hard_state;
  // Drop entries at or below this index. REQUIRES: a snapshot at or above
  // it is stored (in this write or an earlier one). Since a snapshot already
  // drops every entry at or below its own index, this never removes
  // anything today; it is kept so the write's shape need not change if
  // snapshots ever retain a tail for lagging followers.
  std::optional<Index> compact_to;
  // Recorded durably with this write (atomically with the rest: lost or
  // kept with it at a crash, never without it). REQUIRES: identity->valid();
  // the store holds no identity, or one that MayBecome this one, counting
  // writes queued before this one (a store never changes owner or nonce,
  // and is never un-confirmed: the implementation CHECKs). Writing the same
  // identity again is allowed and changes nothing.
  std::optional<StoreIdentity> identity;

  // An identity alone makes a write non-empty (the Host may record who it
  // is before it has any Raft state to persist).
  bool empty() const {
    return !snapshot && entries.empty() && !hard_state && !compact_to &&
           !identity;
  }
};

// A node's durable Raft state: log, hard state and latest snapshot.
//
// Writes are asynchronous so the event loop never blocks on disk. They
// complete in FIFO order; a write's `done` callback runs exactly once, on the
// owner's thread, only after the write and every earlier one are durable
// (fsync'd). A failed durable write is fatal by contract: the store crashes
// the process (CHECK) rather than report it, because Raft has already acted
// on the assumption that the write will land (votes, acks).
//
// Reads serve recovery at start-up and return the state that includes every
// write whose callback has run. Errors from reads are operating errors:
// DATA_LOSS for a log that lies (gap, bad checksum, entries that contradict
// the snapshot), naming the file and the index; the node must refuse to
// start.
class LogStore {
 public:
  using Done = std::function<void()>;

  virtual ~LogStore() = default;

  // Queues a write. Never blocks on disk; never runs `done` inside Write().
  // REQUIRES: !write.empty(), `done` is set, and LogWrite's field REQUIRES.
  // Reads may reflect a queued write before its callback runs (they always
  // reflect every write whose callback has run).
  virtual void Write(LogWrite write, Done done) = 0;

  // Runs the callbacks of completed writes, in order, on the calling (owner's)
  // thread. Stores that complete writes on another thread need it; stores
  // driven by the owner's event loop may run callbacks themselves and make
  // this a no-op.
  virtual void PollCompletions() = 0;

  // Recovery reads.
  virtual absl::StatusOr<raft::HardState> ReadHardState() = 0;
  // The latest snapshot, or nullopt when none was ever saved.
  virtual absl::StatusOr<std::optional<raft::Snapshot>> ReadSnapshot() = 0;
  // First index held in the log (snapshot index + 1 when compacted; 1 for a
  // new store) and last index (first - 1 when the log is empty).
  virtual absl::StatusOr<Index> FirstIndex() = 0;
  virtual absl::StatusOr<Index> LastIndex() = 0;
  // Entries [lo, hi). REQUIRES: FirstIndex() <= lo <= hi <= LastIndex() + 1.
  virtual absl::StatusOr<std::vector<raft::Entry>> ReadEntries(Index lo,
                                                               Index hi) = 0;
  // Term of the entry at `index`; the snapshot's term at its index (Term(0)
  // at Index(0) when there is no snapshot). OUT_OF_RANGE outside
  // [snapshot index, LastIndex()].
  virtual absl::StatusOr<Term> ReadTerm(Index index) = 0;
  // The recorded identity, or nullopt for a store that never recorded one
  // (a brand-new store, or one written before stores had identities: the
  // caller tells them apart by whether the store holds any Raft state).
  // Reflects every write whose callback has run. Errors: DATA_LOSS, naming
  // the store, when the record is unreadable or corrupt (the node must
  // refuse to start); otherwise as the other reads.
  virtual absl::StatusOr<std::optional<StoreIdentity>> ReadIdentity() = 0;
};

// ---------------------------------------------------------------------------
// Time.

// Monotonic time in microseconds since an arbitrary, per-node epoch. Only
// differences and comparisons on one node mean anything: two nodes' clocks
// neither agree nor run at exactly the same rate (the simulator drifts them).
using MonoMicros = int64_t;

inline constexpr int64_t kMicrosPerMilli = 1000;
inline constexpr int64_t kMicrosPerSecond = 1000 * 1000;

// A node's monotonic clock.
//
// NowMicros() never returns less than a value it returned before; an
// implementation CHECKs this (a clock that goes backwards breaks leases and
// timeouts, so the node must stop). It may return the same value twice.
// Thread: the Host's thread only.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual MonoMicros NowMicros() = 0;
};

// One-shot timers on the node's Clock, identified by caller-chosen ids (the
// Host owns a handful: tick, controller scans, client request timeouts).
//
// A timer fires once, at or after its deadline as read on this node's Clock,
// by running its callback on the Host's thread; it is disarmed before the
// callback runs, so the callback may re-arm the same id. Timers whose
// deadlines are equal fire in the order they were armed; an earlier deadline
// fires first. Arming an id that is armed replaces the old deadline and
// callback (the old one never runs). A timer that is late (the node was
// paused, the loop was busy) fires as soon as possible, still in deadline
// order. A callback never runs inside ArmAt/ArmAfter, even for a deadline in
// the past. There is no error path: arming cannot fail.
class Timers {
 public:
  using TimerId = uint64_t;
  using Callback = std::function<void()>;

  // At most this many timers are armed at once per node. REQUIRES on Arm*.
  static constexpr size_t kArmedMax = 1024;
  // The longest delay or distance to a deadline (a year): keeps deadline
  // arithmetic far from overflow.
  static constexpr int64_t kDelayMaxUs = 365LL * 24 * 3600 * 1000 * 1000;

  virtual ~Timers() = default;

  // Arms `id` to fire at `deadline` on this node's Clock. A deadline in the
  // past fires as soon as possible. REQUIRES: callback is not empty; fewer
  // than kArmedMax timers are armed, or `id` is one of them; deadline is at
  // most kDelayMaxUs after now.
  virtual void ArmAt(TimerId id, MonoMicros deadline, Callback callback) = 0;

  // Arms `id` to fire `delay_us` after now. REQUIRES: 0 <= delay_us <=
  // kDelayMaxUs and the REQUIRES of ArmAt.
  virtual void ArmAfter(TimerId id, int64_t delay_us, Callback callback) = 0;

  // Disarms `id`; its callback will not run. Returns false (and does nothing)
  // when `id` was not armed.
  virtual bool Disarm(TimerId id) = 0;

  virtual bool IsArmed(TimerId id) const = 0;
};

// ---------------------------------------------------------------------------
// Network.

// What travels between two nodes: either a Raft message, or opaque bytes that
// the Host frames itself (snapshot chunks, forwarded client requests, agent
// heartbeats). Transports deliver packets whole or not at all. `from` and
// `to` are stamped by the transport (production: from the connection's
// handshake), never taken from the payload; a Host should drop a Raft message
// whose own `from` disagrees with the packet's.
struct Packet {
  enum class Kind : uint8_t { kRaft = 0, kBytes = 1 };

  NodeId from;
  NodeId to;
  Kind kind = Kind::kRaft;
  raft::Message raft;  // kind == kRaft
  std::string bytes;   // kind == kBytes

  // Approximate size on the wire, for byte limits.
  size_t WireBytes() const {
    return kind == Kind::kRaft ? raft.ByteSizeLong() : bytes.size();
  }
};

// Best-effort, non-blocking delivery of packets to peers.
//
// Send never blocks and never reports delivery: a packet may be lost,
// duplicated, delayed or reordered, exactly the failure model Raft is built
// for. Each peer has a bounded outgoing queue (kQueuePacketsMax); a Send
// that would exceed it drops the packet and says so, so the Host can report
// the peer unreachable to Raft (MSG_UNREACHABLE) instead of buffering
// without bound. Delivery runs the receiver registered by SetReceiver, on the
// Host's thread, one packet per call, never inside Send.
//
// Two lanes lead to each peer. The control lane carries Send and SendBytes:
// Raft messages and small Host bytes, which must arrive promptly
// (heartbeats, appends, votes, acks). The bulk lane carries SendBulk: Host
// bytes that may be large and slow to send (snapshot chunks). A transport
// that keeps the lanes apart (production TCP: one connection and one queue
// each) never lets what waits on the bulk lane delay the control lane (no
// head-of-line blocking), and a full queue on one lane never refuses a
// packet on the other; one that does not (SendBulk's default, below) is
// slower, not wrong. Whatever order a transport keeps (production TCP: send
// order) holds within a lane only: a bulk packet may arrive before or after
// control packets sent around it.
class Transport {
 public:
  // The per-peer, per-lane outgoing queue bound, in packets, for every
  // implementation (production TCP: frames not yet written to the socket;
  // simulator: packets in flight on the link).
  static constexpr size_t kQueuePacketsMax = 4096;

  // A typed result, not an error: a dropped packet is an expected outcome.
  enum class SendResult : uint8_t {
    kQueued = 0,       // accepted (it may still be lost later)
    kQueueFull = 1,    // dropped: kQueuePacketsMax packets already queued
    kUnreachable = 2,  // dropped: peer unknown, or known to be down (the
                       // simulator only knows "unknown": a crashed peer's
                       // packets are accepted and vanish, as on a real wire)
  };

  // The packet is the receiver's to consume (move from); it lives until the
  // call returns.
  using Receiver = std::function<void(Packet&& packet)>;

  virtual ~Transport() = default;

  // This node's id (the `from` of every packet it sends).
  virtual NodeId self() const = 0;

  // Registers the delivery callback. Packets that arrive while no receiver is
  // registered are dropped. REQUIRES: no receiver is registered (once per
  // Host lifetime; a crash clears it so a restarted Host registers again).
  virtual void SetReceiver(Receiver receiver) = 0;

  // Queues a Raft message for `to`. REQUIRES: to != self().
  virtual SendResult Send(NodeId to, raft::Message message) = 0;

  // Queues opaque Host bytes for `to` on the control lane. REQUIRES: to !=
  // self().
  virtual SendResult SendBytes(NodeId to, std::string bytes) = 0;

  // Queues opaque Host bytes for `to` on the bulk lane. Delivered exactly
  // like SendBytes' (a kBytes packet to the same receiver, which cannot
  // tell the lanes apart), with the same failure model. The bulk lane has
  // its own bounded queue (at most kQueuePacketsMax packets, and an
  // implementation's byte bound): kQueueFull says that queue is full, and
  // nothing about the control lane's; kUnreachable says the bulk lane to
  // `to` is down or `to` is unknown (the control lane may still be up).
  // REQUIRES: to != self().
  //
  // The default sends on the control lane (SendBytes): a transport with one
  // lane (the simulator's network, the scripted test transport) carries the
  // same bytes with the same failure model, and only the separation is
  // missing (one queue and one order for both), which matters for latency,
  // not for correctness: the Host takes a refused chunk for a lost one.
  virtual SendResult SendBulk(NodeId to, std::string bytes) {
    return SendBytes(to, std::move(bytes));
  }

  // Packets queued for `to` on every lane and not yet sent or delivered.
  virtual size_t QueuedPackets(NodeId to) const = 0;
};

// ---------------------------------------------------------------------------
// Work: tasks and VMs run by this node's agent.

enum class WorkKind : uint8_t { kTask = 0, kVm = 1 };

absl::string_view WorkKindName(WorkKind kind);

// What to run. A small struct rather than the cluster protobufs so the Env
// does not depend on the scheduler's schema; the Host converts.
struct WorkSpec {
  WorkKind kind = WorkKind::kTask;
  // Task id or VM name; unique per kind on this node while it runs.
  std::string id;
  // Task: the program. VM: the image.
  std::string command;
  std::vector<std::string> args;
  // Task: killed (SIGTERM, then SIGKILL) after this long; 0 = no limit.
  // VMs ignore it.
  int64_t timeout_us = 0;
  // VM resources (tasks: informational).
  uint32_t vcpus = 0;
  uint64_t memory_mb = 0;
  uint64_t disk_gb = 0;
};

// A change in a piece of work's life, reported by callback.
struct WorkEvent {
  enum class State : uint8_t {
    kRunning = 0,  // the process or VM is up
    kExited = 1,   // it is gone; the fields below are final
  };
  // Why it exited.
  enum class Reason : uint8_t {
    kNone = 0,      // kRunning
    kFinished = 1,  // ran to completion (exit_code says how it went)
    kTimedOut = 2,  // killed at timeout_us
    kStopped = 3,   // killed by Stop()
    kFailed = 4,    // could not start, or a VM died
  };

  WorkKind kind = WorkKind::kTask;
  std::string id;
  State state = State::kRunning;
  Reason reason = Reason::kNone;
  int32_t exit_code = 0;
  // The last bytes of the combined stdout/stderr, at most kOutputTailBytesMax.
  std::string output_tail;
  // From Start() to this event, on the node's Clock.
  int64_t duration_us = 0;
};

// Starts and stops tasks and VMs on this node.
//
// Start returns at once; progress arrives through the callback registered by
// SetCallback: kRunning once the work is up, then exactly one kExited, in
// that order, each delivered once. Callbacks run on the Host's thread, never
// inside Start() or Stop().
//
// Work belongs to the machine, not to the node process: tasks and VMs are
// processes of their own (own session, cgroup) and outlive the node process
// that started them. After the node process crashes and a new one (a new
// Host) starts on the same machine, each piece of work that was running has
// either
//   - survived: it kept running with its own timing (its timeout still
//     counts from its original Start); Running() lists it; its events that
//     the old process never heard, and every later one, are delivered to the
//     callback the new Host registers (a kRunning may arrive for work the new
//     Host never started; an exit that happened while no process listened
//     arrives right after SetCallback); or
//   - died with the machine (a reboot): it is not in Running() and no event
//     about it ever arrives.
// A restarted Host must therefore read Running() after SetCallback, adopt
// what the replicated state says should run here (never Start it again),
// Stop what should not, and treat a kExited for work it did not start as the
// end of the adopted run. Running() lists work whose kExited has not been
// delivered yet, so no work vanishes silently while the machine is up.
//
// Running() returns ids only: a Host that must tell runs of one id apart
// (task attempts, VM generations) encodes that in what it starts or keeps it
// in durable local state.
class Executor {
 public:
  static constexpr size_t kOutputTailBytesMax = 4096;
  // At most this many tasks and VMs run at once per node.
  static constexpr size_t kRunningMax = 1024;

  using Callback = std::function<void(const WorkEvent& event)>;

  virtual ~Executor() = default;

  // REQUIRES: no callback is registered (once per Host lifetime; a crash of
  // the node process clears it). Events that wait (see above) are delivered
  // after this returns, never inside it.
  virtual void SetCallback(Callback callback) = 0;

  // Starts `spec`. Errors: INVALID_ARGUMENT for an empty id or command or a
  // negative timeout; ALREADY_EXISTS when (kind, id) is in Running() (also
  // work that survived a crash of the node process, and work that exited
  // but whose kExited has not been delivered);
  // RESOURCE_EXHAUSTED at kRunningMax. On error nothing starts and no
  // callback runs.
  virtual absl::Status Start(const WorkSpec& spec) = 0;

  // Asks (kind, id) to stop; its kExited event (reason kStopped) follows.
  // Returns false when it is not running (or is already stopping, or has
  // already exited and only its kExited is still to be delivered).
  // Survivors of a node process crash can be stopped like any other work.
  virtual bool Stop(WorkKind kind, absl::string_view id) = 0;

  // Ids of the work of `kind` whose kExited has not been delivered, sorted.
  virtual std::vector<std::string> Running(WorkKind kind) const = 0;
};

// ---------------------------------------------------------------------------

// Everything a Host reaches the world through, borrowed (not owned): the
// simulator's SimNodeEnv or the production runtime owns the parts and must
// keep them alive for the Host's lifetime. REQUIRES for a Host: none null.
struct Env {
  Clock* clock = nullptr;
  Timers* timers = nullptr;
  Transport* transport = nullptr;
  LogStore* log_store = nullptr;
  Executor* executor = nullptr;

  bool complete() const {
    return clock != nullptr && timers != nullptr && transport != nullptr &&
           log_store != nullptr && executor != nullptr;
  }
};

inline absl::string_view WorkKindName(WorkKind kind) {
  return kind == WorkKind::kTask ? "task" : "vm";
}

}  // namespace blixard

#endif  // BLIXARD_CORE_ENV_H_

// The Env interfaces: the only way the Host reaches the world outside the
// pure core. The simulator implements them in memory with faults (sim/), the
// production runtime with epoll, TCP, SQLite and processes (net/, storage/).
// Every callback runs on the Host's single thread.
//
// This file holds LogStore now; Clock, Timers, Transport and Executor join it
// with the Host (see ../shared/ARCHITECTURE.md, "Env: the pluggable world").
#ifndef BLIXARD_CORE_ENV_H_
#define BLIXARD_CORE_ENV_H_

#include <functional>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/base/types.h"
#include "core/proto/raft.pb.h"

namespace blixard {

// One durable write: what the Host persists for one Raft Ready, applied
// atomically and in this order: snapshot (which drops every log entry at or
// below its index), entries (truncating any stored suffix from the first new
// index on), hard state, then compaction.
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

  bool empty() const {
    return !snapshot && entries.empty() && !hard_state && !compact_to;
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
};

}  // namespace blixard

#endif  // BLIXARD_CORE_ENV_H_

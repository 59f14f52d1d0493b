// Storage: the core's read-only view of the durable log, and MemoryStorage,
// its in-memory implementation (etcd-raft's storage.go).
//
// The core only READS storage; the Host writes it. After a Ready's write is
// durable (LogStore callback, core/env.h) the Host copies the same snapshot,
// entries and hard state into its MemoryStorage and then calls
// RawNode::OnPersisted, so everything the core reads from Storage is durable.
//
// Index conventions: the log holds entries (FirstIndex()-1, LastIndex()]; the
// entry at FirstIndex()-1 is the snapshot's (or a dummy with term 0 on a new
// log), whose term is still answered by Term().
//
// Error codes the core understands:
//   OUT_OF_RANGE  "compacted": the index is below FirstIndex()-1;
//   NOT_FOUND     "unavailable": the index is beyond LastIndex();
//   UNAVAILABLE   a snapshot is being produced; try again later.
//
// Thread-safety: MemoryStorage is not synchronized; the Host's single thread
// owns it.
#ifndef BLIXARD_CORE_RAFT_STORAGE_H_
#define BLIXARD_CORE_RAFT_STORAGE_H_

#include <cstdint>
#include <limits>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/base/types.h"
#include "core/proto/raft.pb.h"

namespace blixard::raft {

// No limit on the bytes returned by Entries().
inline constexpr uint64_t kNoLimit = std::numeric_limits<uint64_t>::max();

inline bool IsCompacted(const absl::Status& s) {
  return s.code() == absl::StatusCode::kOutOfRange;
}
inline bool IsUnavailable(const absl::Status& s) {
  return s.code() == absl::StatusCode::kNotFound;
}
inline bool IsSnapshotTemporarilyUnavailable(const absl::Status& s) {
  return s.code() == absl::StatusCode::kUnavailable;
}

struct InitialState {
  HardState hard_state;
  ConfState conf_state;
};

class Storage {
 public:
  virtual ~Storage() = default;

  // The persisted hard state and the membership in effect at the snapshot
  // (conf changes in later log entries are re-applied by the Host).
  virtual absl::StatusOr<InitialState> GetInitialState() const = 0;
  // Entries [lo, hi), stopping once their payload exceeds max_bytes but
  // always returning at least one entry when lo < hi.
  // REQUIRES: lo <= hi.
  virtual absl::StatusOr<std::vector<Entry>> Entries(Index lo, Index hi,
                                                     uint64_t max_bytes) const = 0;
  virtual absl::StatusOr<Term> TermAt(Index index) const = 0;
  virtual Index FirstIndex() const = 0;
  virtual Index LastIndex() const = 0;
  // The latest snapshot (UNAVAILABLE while one is being produced).
  virtual absl::StatusOr<Snapshot> GetSnapshot() const = 0;
};

class MemoryStorage final : public Storage {
 public:
  MemoryStorage();

  absl::StatusOr<InitialState> GetInitialState() const override;
  absl::StatusOr<std::vector<Entry>> Entries(Index lo, Index hi,
                                             uint64_t max_bytes) const override;
  absl::StatusOr<Term> TermAt(Index index) const override;
  Index FirstIndex() const override;
  Index LastIndex() const override;
  absl::StatusOr<Snapshot> GetSnapshot() const override;

  // Writes (by the Host, after the data is durable).
  void SetHardState(const HardState& hard_state) { hard_state_ = hard_state; }
  const HardState& hard_state() const { return hard_state_; }
  // Replaces the log with the snapshot. A snapshot older than the current
  // one is refused with FAILED_PRECONDITION.
  absl::Status ApplySnapshot(Snapshot snapshot);
  // Appends entries, truncating any existing suffix from the first new
  // index. Entries already compacted are skipped. INVALID_ARGUMENT when the
  // entries would leave a gap or are not contiguous.
  absl::Status Append(std::vector<Entry> entries);
  // Makes a snapshot at `index` (<= LastIndex) carrying `data` (moved in:
  // a state can be large, so nothing is copied and nothing returned;
  // GetSnapshot reads it). FAILED_PRECONDITION for an index at or below the
  // current snapshot's, INVALID_ARGUMENT beyond the last index.
  absl::Status CreateSnapshot(Index index, const ConfState* cs, std::string data);
  // Drops entries below `index` (the entry at `index` becomes the dummy).
  // REQUIRES for success: FirstIndex()-1 < index <= LastIndex(). Call
  // CreateSnapshot(index, ...) first: a leader sends GetSnapshot() to
  // followers that need compacted entries, so it must cover them.
  absl::Status Compact(Index index);
  // Bootstrap: the membership of a brand-new cluster, recorded as the conf
  // state of the empty (index 0) snapshot. FAILED_PRECONDITION once the
  // storage holds entries or a snapshot.
  absl::Status Bootstrap(const ConfState& conf_state);
  // Test hook: GetSnapshot() answers UNAVAILABLE while set.
  void set_snapshot_unavailable(bool v) { snapshot_unavailable_ = v; }

  void CheckInvariants() const;

 private:
  // Entries from `position` on follow their predecessors: consecutive
  // indexes, terms that never go down.
  void CheckEntriesFrom(size_t position) const;
  Index offset() const { return Index(entries_.front().index()); }

  HardState hard_state_;
  Snapshot snapshot_;
  // entries_[0] is the dummy entry at snapshot index/term. A vector, not a
  // deque: size and index arithmetic run several times per event, and the
  // front is dropped only at compaction (every few hundred entries).
  std::vector<Entry> entries_;
  bool snapshot_unavailable_ = false;
};

}  // namespace blixard::raft

#endif  // BLIXARD_CORE_RAFT_STORAGE_H_

// Unstable: the tail of the log (and possibly a snapshot) that the node has
// accepted but that is not yet known to be durable (etcd-raft's log_unstable.go).
//
// Entries [offset, offset + entries.size()) live here. Those below
// offset_in_progress have been handed to the Host in a Ready and are being
// written; those at or above it have not been handed out yet. When the Host
// reports a write durable (StableTo), the prefix moves to Storage.
//
// Asynchronous writes make one subtlety: an in-flight write may be overtaken
// by a truncation (a new leader overwrote the tail). (index, term) alone
// cannot tell: entry (2, t1) can be written, replaced by (2, t5) in a later
// write still in flight, and accepted again as (2, t1) from a newer leader
// whose log still has it; the first write's report would then mark the new
// (2, t1) stable although the queued (2, t5) write is about to overwrite it
// in storage (found by raft_step_fuzzer). So every truncation starts a new
// epoch, each write is tagged with the epoch it was handed out in, and
// StableTo ignores reports from an older epoch. That never stalls: a
// truncation always appends entries, whose later write (of the new epoch)
// marks everything up to it stable. Within an epoch the entry at `index`
// must still have `term` (Log Matching: (index, term) fixes the prefix).
#ifndef BLIXARD_CORE_RAFT_UNSTABLE_H_
#define BLIXARD_CORE_RAFT_UNSTABLE_H_

#include <deque>
#include <optional>
#include <vector>

#include "core/base/logger.h"
#include "core/base/types.h"
#include "core/proto/raft.pb.h"

namespace blixard::raft {

class Unstable {
 public:
  Unstable(Index offset, Logger* logger)
      : offset_(offset), offset_in_progress_(offset), logger_(logger) {}

  std::optional<Index> MaybeFirstIndex() const;
  std::optional<Index> MaybeLastIndex() const;
  // The term of the last entry, or of the snapshot when there are no
  // entries; nullopt when there is neither.
  std::optional<Term> MaybeLastTerm() const;
  std::optional<Term> MaybeTerm(Index index) const;

  // Entries/snapshot not yet handed to the Host.
  bool HasNextEntries() const;
  // Copies [offset_in_progress, end) into `out`.
  void NextEntries(std::vector<Entry>* out) const;
  const Snapshot* NextSnapshot() const;
  // Marks everything currently unstable as handed out.
  void AcceptInProgress();

  // Entries up to (index, term) are durable, written by a write handed out
  // in `epoch` (epoch() at GetReady time). Stale reports are ignored.
  void StableTo(Index index, Term term, uint64_t epoch);
  // Bumped by every truncation of the unstable log and every snapshot
  // restore: writes handed out before it may be overwritten by later ones.
  uint64_t epoch() const { return epoch_; }
  void StableSnapTo(Index index);
  void Restore(Snapshot snapshot);
  // Appends, truncating any suffix that conflicts. REQUIRES: entries are
  // contiguous and entries[0].index() <= offset + size.
  void TruncateAndAppend(std::vector<Entry>&& entries);
  // Copies [lo, hi) into `out`. REQUIRES: offset <= lo <= hi <= last + 1.
  void Slice(Index lo, Index hi, std::vector<Entry>* out) const;

  Index offset() const { return offset_; }
  Index offset_in_progress() const { return offset_in_progress_; }
  const std::optional<Snapshot>& snapshot() const { return snapshot_; }
  bool snapshot_in_progress() const { return snapshot_in_progress_; }
  size_t size() const { return entries_.size(); }
  const Entry& at(Index index) const { return entries_[index.Since(offset_)]; }

  void CheckInvariants() const;

 private:
  std::optional<Snapshot> snapshot_;
  std::deque<Entry> entries_;
  Index offset_;
  bool snapshot_in_progress_ = false;
  Index offset_in_progress_;
  uint64_t epoch_ = 0;
  Logger* logger_;
};

}  // namespace blixard::raft

#endif  // BLIXARD_CORE_RAFT_UNSTABLE_H_

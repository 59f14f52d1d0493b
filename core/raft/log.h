// RaftLog: the node's log as one sequence, stitched from Storage (durable)
// and Unstable (accepted, not yet durable), with the commit and apply
// cursors (etcd-raft's log.go; Raft paper 5.3).
//
//   snapshot/first-1 ... applied <= committed ... persisted ... last
//
// committed: known committed by the cluster. applied: handed to the
// application (the RawNode marks entries applied once the Host has applied
// them). Only entries that are locally durable are ever handed out for
// applying (NextCommittedEntries), a requirement of asynchronous storage.
#ifndef BLIXARD_CORE_RAFT_LOG_H_
#define BLIXARD_CORE_RAFT_LOG_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/base/logger.h"
#include "core/base/types.h"
#include "core/proto/raft.pb.h"
#include "core/raft/storage.h"
#include "core/raft/unstable.h"

namespace blixard::raft {

class RaftLog {
 public:
  // REQUIRES: storage outlives the log.
  RaftLog(const Storage* storage, Logger* logger);

  Index FirstIndex() const;
  Index LastIndex() const;
  Term LastTerm() const;
  // OUT_OF_RANGE when compacted, NOT_FOUND beyond the last index.
  absl::StatusOr<Term> TermAt(Index index) const;
  // Term at index, or Term(0) when unknown (compacted or beyond the end).
  Term ZeroTermOnError(Index index) const;
  bool MatchTerm(Index index, Term term) const;
  // Raft paper 5.4.1: a candidate's log (last_term, last_index) is at least
  // as up-to-date as ours.
  bool IsUpToDate(Index last_index, Term last_term) const;

  enum class AppendResult { kAppended, kMismatch, kRefused };
  // The follower side of AppendEntries (paper 5.3): if our log matches
  // (prev_index, prev_term), appends `entries` (moving them out), truncating
  // a conflicting suffix, sets *last_new to the last index the message
  // covered and commits min(leader_commit, *last_new). kRefused when the
  // message would truncate a committed entry (a broken or malicious leader):
  // nothing changes.
  AppendResult MaybeAppend(Index prev_index, Term prev_term,
                           Index leader_commit,
                           google::protobuf::RepeatedPtrField<Entry>* entries,
                           Index* last_new);
  // Leader's append. REQUIRES: entries start at LastIndex()+1... or any
  // index above committed.
  Index Append(std::vector<Entry>&& entries);

  // The first index whose entry conflicts with `entries` (0 if none).
  Index FindConflict(const google::protobuf::RepeatedPtrField<Entry>& entries) const;
  // The largest (index', term') with index' <= index and term' <= term, for
  // fast rejection hints (skip a whole term per round trip).
  std::pair<Index, Term> FindConflictByTerm(Index index, Term term) const;

  // Entries [lo, hi) with at most max_bytes payload (at least one entry).
  // OUT_OF_RANGE when lo is compacted.
  absl::StatusOr<std::vector<Entry>> Slice(Index lo, Index hi,
                                           uint64_t max_bytes) const;
  // Entries from `lo` to the end, limited as Slice.
  absl::StatusOr<std::vector<Entry>> EntriesFrom(Index lo, uint64_t max_bytes) const;

  // Appends copies of the entries from `lo` on to `out` (as EntriesFrom,
  // without an intermediate vector); adds their payload to *bytes.
  absl::Status CopyEntriesFrom(Index lo, uint64_t max_bytes,
                               google::protobuf::RepeatedPtrField<Entry>* out,
                               uint64_t* bytes) const;

  void CommitTo(Index index);
  // Commits max_index if its entry has `term` (paper 5.4.2: only entries of
  // the leader's current term are committed by counting).
  bool MaybeCommit(Index max_index, Term term);
  void AppliedTo(Index index);
  void SetApplying(Index index) { applying_ = index; }

  // The last index known durable locally.
  Index PersistedLastIndex() const;
  bool HasNextCommittedEntries() const;
  // Committed, durable, not yet handed out entries, up to max_bytes.
  std::vector<Entry> NextCommittedEntries(uint64_t max_bytes) const;

  bool HasNextUnstableEntries() const { return unstable_.HasNextEntries(); }
  bool HasNextOrInProgressSnapshot() const { return unstable_.snapshot().has_value(); }
  absl::StatusOr<Snapshot> GetSnapshot() const;
  void Restore(Snapshot snapshot);

  Unstable& unstable() { return unstable_; }
  const Unstable& unstable() const { return unstable_; }
  const Storage* storage() const { return storage_; }
  Index committed() const { return committed_; }
  Index applied() const { return applied_; }
  Index applying() const { return applying_; }

  std::string ToString() const;
  void CheckInvariants() const;

 private:
  const Storage* storage_;
  Unstable unstable_;
  Index committed_;
  Index applying_;  // last index handed out for applying
  Index applied_;
  Logger* logger_;
};

}  // namespace blixard::raft

#endif  // BLIXARD_CORE_RAFT_LOG_H_

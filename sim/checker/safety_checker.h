// SafetyChecker: the simulator's Raft safety oracle, fed observations of
// every node as the run goes and checking, incrementally, after each one:
//
//   election safety       at most one leader per term (Raft §5.2);
//   log matching          two logs with an entry of the same index and term
//                         hold the same entry there and agree on everything
//                         before it (§5.3) — checked inductively by recording,
//                         for each (index, term), the entry's hash and the
//                         term of its predecessor;
//   leader completeness   a node that becomes leader of term T holds every
//                         entry known to be committed in a term below T
//                         (§5.4; the commit term is the term of the node that
//                         reported the commit, which can only overestimate
//                         it, so the check never cries wolf);
//   committed entries never change: no node commits, applies or acknowledges
//                         a different entry at a committed index, and no node
//                         truncates a committed entry from its log;
//   state machine safety  every node applies the same entry at each index,
//                         and nodes at equal applied index have equal state
//                         digests;
//   acknowledged writes   a write acknowledged to a client at (index, term)
//                         stays the committed entry at that index;
//   current-term commits  a leader that extends the committed history does
//                         so at an entry of its own term: Raft never commits
//                         an entry of a previous term by counting replicas
//                         (§5.4.2, Figure 8), and nothing else lets a leader
//                         learn of a commit nobody reported before;
//   vote safety           a node grants its vote to at most one candidate in
//                         a term (§5.2);
//   votes durable         a node that restarts recovers at least the term of
//                         its last granted vote and, in that term, the same
//                         vote (Figure 2: grant only after persisting).
//
// Each check costs O(1) or O(entries changed), except leader completeness,
// O(committed log) once per election, so the simulator can afford to run
// every check after every event. The first violation is kept (with its
// virtual time and node); later observations are ignored.
//
// Not thread-safe. Deterministic: ordered containers only.
#ifndef BLIXARD_SIM_CHECKER_SAFETY_CHECKER_H_
#define BLIXARD_SIM_CHECKER_SAFETY_CHECKER_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "core/base/types.h"

namespace blixard::sim {

// An entry as the oracle sees it: position, term and a stable hash of its
// bytes (type and data).
struct EntryDigest {
  Index index;
  Term term;
  uint64_t hash = 0;
};

struct Violation {
  int64_t time_us = 0;
  NodeId node;
  std::string property;  // e.g. "election safety"
  std::string detail;
};

class SafetyChecker {
 public:
  SafetyChecker() = default;

  // The virtual time stamped on violations found by later observations.
  void SetTime(int64_t time_us) { time_us_ = time_us; }

  // `node` is at `term`, leader or not (call on every role or term change).
  // Checks election safety, and leader completeness when it becomes leader.
  void OnRole(NodeId node, bool is_leader, Term term);

  // `node` wrote `entries` (contiguous) to its log; anything it held at or
  // after the first entry's index is replaced. REQUIRES: entries non-empty.
  void OnAppend(NodeId node, const std::vector<EntryDigest>& entries);

  // `node`'s log now starts after a snapshot at (index, term); entries at or
  // below `index` are gone. `reset_log` drops the rest of its log too
  // (installing a leader's snapshot) rather than keeping it (compaction).
  void OnSnapshot(NodeId node, Index index, Term term, bool reset_log);

  // `node` lost everything not durable: its log is replaced by what it
  // recovered.
  void OnRecover(NodeId node, Index snapshot_index, Term snapshot_term,
                 const std::vector<EntryDigest>& entries);

  // `node` learned that its log is committed up to `commit`.
  void OnCommit(NodeId node, Index commit);

  // `node` applied `entry` to its state machine.
  void OnApply(NodeId node, const EntryDigest& entry);

  // `node`'s state machine digest at applied index `applied`.
  void OnDigest(NodeId node, Index applied, uint64_t digest);

  // A client was told its write succeeded as the entry at (index, term).
  void OnAcknowledge(NodeId node, Index index, Term term);

  // `voter` sent a vote grant (MsgVoteResp, not a pre-vote) to `candidate`
  // for `term`. Checks vote safety.
  void OnVoteGranted(NodeId voter, NodeId candidate, Term term);

  // `node` started (or restarted) with this term and vote as its durable
  // hard state. Checks that its last granted vote survived.
  void OnBoot(NodeId node, Term term, NodeId vote);

  bool ok() const { return !violation_.has_value(); }
  const std::optional<Violation>& violation() const { return violation_; }
  // Number of individual property checks evaluated so far.
  uint64_t checks() const { return checks_; }
  Index committed_index() const { return committed_last_; }

  void CheckInvariants() const;

 private:
  struct NodeLog {
    Index snapshot_index;
    Term snapshot_term;
    // Entry at snapshot_index + 1 + i.
    std::vector<EntryDigest> entries;

    Index last_index() const { return snapshot_index + entries.size(); }
    // Term at `index`, when the log holds it (or it is the snapshot's).
    std::optional<Term> TermAt(Index index) const;
    const EntryDigest* At(Index index) const;
  };
  struct Known {
    uint64_t hash;
    Term prev_term;
  };

  void Fail(NodeId node, absl::string_view property, std::string detail);
  void RecordEntries(NodeId node, const NodeLog& log, Index from);
  // The committed entry at `index`, if known.
  const EntryDigest* CommittedAt(Index index) const;
  void CheckLeaderCompleteness(NodeId node, Term term);

  int64_t time_us_ = 0;
  uint64_t checks_ = 0;
  std::optional<Violation> violation_;

  std::map<NodeId, NodeLog> logs_;
  std::map<Term, NodeId> leaders_;
  // (index, term) -> hash and predecessor's term, for log matching. Only
  // looked up, never iterated, so a hash map keeps determinism.
  absl::flat_hash_map<std::pair<uint64_t, uint64_t>, Known> known_;
  // committed_[i - 1] is the committed entry at index i; the run starts
  // from an empty log, so every committed entry passes through here.
  std::vector<EntryDigest> committed_;
  // committed_terms_[i - 1]: the term in which index i was seen committed.
  std::vector<Term> committed_terms_;
  Index committed_last_;
  std::map<NodeId, Term> node_terms_;
  // Nodes that lead now, with their term (for current-term commits).
  std::map<NodeId, Term> leading_;
  // (voter, term) -> the candidate it granted; and each voter's last grant.
  std::map<std::pair<NodeId, Term>, NodeId> grants_;
  std::map<NodeId, std::pair<Term, NodeId>> last_grant_;
  std::map<Index, std::pair<NodeId, uint64_t>> digests_;
  std::map<Index, Term> acknowledged_;
};

}  // namespace blixard::sim

#endif  // BLIXARD_SIM_CHECKER_SAFETY_CHECKER_H_

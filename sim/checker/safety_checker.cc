#include "sim/checker/safety_checker.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/check.h"

namespace blixard::sim {
namespace {

std::string Describe(const EntryDigest& e) {
  return absl::StrCat("(index ", e.index.value(), ", term ", e.term.value(),
                      ", hash ", absl::Hex(e.hash), ")");
}

}  // namespace

std::optional<Term> SafetyChecker::NodeLog::TermAt(Index index) const {
  if (index == snapshot_index) return snapshot_term;
  if (const EntryDigest* e = At(index)) return e->term;
  return std::nullopt;
}

const EntryDigest* SafetyChecker::NodeLog::At(Index index) const {
  if (index <= snapshot_index || index > last_index()) return nullptr;
  return &entries[index.Since(snapshot_index) - 1];
}

void SafetyChecker::Fail(NodeId node, absl::string_view property,
                         std::string detail) {
  if (violation_) return;
  violation_ = Violation{time_us_, node, std::string(property), std::move(detail)};
}

const EntryDigest* SafetyChecker::CommittedAt(Index index) const {
  if (index.value() == 0 || index > committed_last_) return nullptr;
  return &committed_[index.value() - 1];
}

void SafetyChecker::OnRole(NodeId node, bool is_leader, Term term) {
  node_terms_[node] = term;
  if (!is_leader) {
    leading_.erase(node);
    return;
  }
  leading_[node] = term;
  ++checks_;
  auto [it, inserted] = leaders_.emplace(term, node);
  if (!inserted && it->second != node) {
    Fail(node, "election safety",
         absl::StrCat("n", node.value(), " became leader in term ",
                      term.value(), ", which already has leader n",
                      it->second.value()));
    return;
  }
  if (inserted) CheckLeaderCompleteness(node, term);
}

void SafetyChecker::CheckLeaderCompleteness(NodeId node, Term term) {
  const NodeLog& log = logs_[node];
  ++checks_;
  // Entries at or below the leader's snapshot are covered by it, provided
  // the snapshot itself sits on the committed history.
  if (const EntryDigest* c = CommittedAt(log.snapshot_index)) {
    if (c->term != log.snapshot_term) {
      Fail(node, "leader completeness",
           absl::StrCat("leader of term ", term.value(), " has a snapshot at ",
                        "index ", log.snapshot_index.value(), " term ",
                        log.snapshot_term.value(), " but the committed entry "
                        "there is ", Describe(*c)));
      return;
    }
  }
  for (Index i = log.snapshot_index.Next(); i <= committed_last_; i = i.Next()) {
    // Entries seen committed only in this term or later need not be here
    // (a vote won in an old term can be counted after a newer commit).
    if (committed_terms_[i.value() - 1] >= term) break;
    const EntryDigest& committed = committed_[i.value() - 1];
    const EntryDigest* held = log.At(i);
    if (held == nullptr || held->term != committed.term ||
        held->hash != committed.hash) {
      Fail(node, "leader completeness",
           absl::StrCat("n", node.value(), " became leader of term ",
                        term.value(), " without committed entry ",
                        Describe(committed),
                        held == nullptr ? " (its log ends at index "
                                        : " (it holds ",
                        held == nullptr ? absl::StrCat(log.last_index().value())
                                        : Describe(*held),
                        ")"));
      return;
    }
  }
}

void SafetyChecker::RecordEntries(NodeId node, const NodeLog& log, Index from) {
  for (Index i = from; i <= log.last_index(); i = i.Next()) {
    const EntryDigest& e = *log.At(i);
    ++checks_;
    const std::optional<Term> prev = log.TermAt(i.Prev());
    // A log whose predecessor is unknown (just after a gap) cannot happen:
    // appends are contiguous with what the node holds.
    CHECK(prev.has_value()) << "n" << node.value() << " log has a gap before " << i;
    auto [it, inserted] =
        known_.emplace(std::make_pair(e.index.value(), e.term.value()),
                       Known{e.hash, *prev});
    if (!inserted && (it->second.hash != e.hash || it->second.prev_term != *prev)) {
      Fail(node, "log matching",
           absl::StrCat("n", node.value(), " holds ", Describe(e),
                        " after term ", prev->value(),
                        ", but another log has hash ",
                        absl::Hex(it->second.hash), " after term ",
                        it->second.prev_term.value(),
                        " at the same index and term"));
      return;
    }
  }
}

void SafetyChecker::OnAppend(NodeId node, const std::vector<EntryDigest>& entries) {
  CHECK(!entries.empty());
  NodeLog& log = logs_[node];
  const Index first = entries.front().index;
  for (size_t k = 0; k < entries.size(); ++k) {
    CHECK_EQ(entries[k].index, first + k) << "appended entries must be contiguous";
  }
  CHECK_GT(first, log.snapshot_index) << "n" << node.value()
                                      << " appended below its snapshot";
  CHECK_LE(first, log.last_index().Next())
      << "n" << node.value() << " appended past the end of its log";
  // Truncation: no committed entry may be removed.
  for (Index i = first; i <= log.last_index(); i = i.Next()) {
    const EntryDigest* old = log.At(i);
    const EntryDigest* committed = CommittedAt(i);
    ++checks_;
    if (committed != nullptr && old->term == committed->term &&
        old->hash == committed->hash) {
      const EntryDigest& replacement = entries[i.Since(first)];
      if (replacement.term != old->term || replacement.hash != old->hash) {
        Fail(node, "committed entries never change",
             absl::StrCat("n", node.value(), " overwrote committed entry ",
                          Describe(*old), " with ", Describe(replacement)));
        return;
      }
    }
  }
  log.entries.resize(first.Since(log.snapshot_index) - 1);
  log.entries.insert(log.entries.end(), entries.begin(), entries.end());
  RecordEntries(node, log, first);
}

void SafetyChecker::OnSnapshot(NodeId node, Index index, Term term,
                               bool reset_log) {
  NodeLog& log = logs_[node];
  ++checks_;
  if (const EntryDigest* c = CommittedAt(index); c != nullptr && c->term != term) {
    Fail(node, "committed entries never change",
         absl::StrCat("n", node.value(), " holds a snapshot at index ",
                      index.value(), " term ", term.value(),
                      " but the committed entry there is ", Describe(*c)));
    return;
  }
  if (index <= log.snapshot_index) return;
  if (reset_log || index > log.last_index()) {
    log.entries.clear();
  } else {
    log.entries.erase(log.entries.begin(),
                      log.entries.begin() + static_cast<std::ptrdiff_t>(
                                                index.Since(log.snapshot_index)));
  }
  log.snapshot_index = index;
  log.snapshot_term = term;
}

void SafetyChecker::OnRecover(NodeId node, Index snapshot_index,
                              Term snapshot_term,
                              const std::vector<EntryDigest>& entries) {
  NodeLog& log = logs_[node];
  log = NodeLog{snapshot_index, snapshot_term, {}};
  leading_.erase(node);  // a restarted node leads nothing
  if (entries.empty()) return;
  CHECK_EQ(entries.front().index, snapshot_index.Next());
  log.entries = entries;
  RecordEntries(node, log, entries.front().index);
}

void SafetyChecker::OnCommit(NodeId node, Index commit) {
  const NodeLog& log = logs_[node];
  ++checks_;
  if (commit > log.last_index()) {
    Fail(node, "committed entries never change",
         absl::StrCat("n", node.value(), " commit index ", commit.value(),
                      " is past its last log index ", log.last_index().value()));
    return;
  }
  // The newest already-known committed index this node also calls committed
  // must match the history; log matching makes the rest of its prefix agree.
  const Index known_to = std::min(commit, committed_last_);
  if (const EntryDigest* mine = log.At(known_to)) {
    const EntryDigest& c = committed_[known_to.value() - 1];
    ++checks_;
    if (c.term != mine->term || c.hash != mine->hash) {
      Fail(node, "committed entries never change",
           absl::StrCat("n", node.value(), " committed ", Describe(*mine),
                        " but ", Describe(c), " was committed before"));
      return;
    }
  }
  // A leader that commits past everything known committed counted replicas
  // itself: the entry it counted must be of its own term (§5.4.2).
  if (auto lead = leading_.find(node); lead != leading_.end() && commit > committed_last_) {
    const EntryDigest* counted = log.At(commit);
    ++checks_;
    if (counted != nullptr && counted->term != lead->second) {
      Fail(node, "current-term commits",
           absl::StrCat("n", node.value(), ", leader of term ", lead->second.value(),
                        ", committed ", Describe(*counted),
                        " of a previous term by counting replicas (known committed up to ",
                        committed_last_.value(), ")"));
      return;
    }
  }
  // Extend the committed history from this node's log.
  for (Index i = committed_last_.Next(); i <= commit; i = i.Next()) {
    const EntryDigest* mine = log.At(i);
    CHECK(mine != nullptr) << "n" << node.value() << " committed index " << i
                           << " below its snapshot before anyone else did";
    committed_.push_back(*mine);
    committed_terms_.push_back(node_terms_[node]);
    committed_last_ = i;
    ++checks_;
    if (auto ack = acknowledged_.find(i);
        ack != acknowledged_.end() && ack->second != mine->term) {
      Fail(node, "acknowledged writes durable",
           absl::StrCat("a client was acknowledged at index ", i.value(),
                        " term ", ack->second.value(), " but ",
                        Describe(*mine), " was committed there"));
      return;
    }
  }
}

void SafetyChecker::OnApply(NodeId node, const EntryDigest& entry) {
  // The committed history is unique, so "every node applies the committed
  // entry at each index" is the same as "all applied prefixes agree".
  ++checks_;
  const EntryDigest* c = CommittedAt(entry.index);
  if (c == nullptr) {
    Fail(node, "state machine safety",
         absl::StrCat("n", node.value(), " applied ", Describe(entry),
                      " before any node knew it committed"));
  } else if (c->term != entry.term || c->hash != entry.hash) {
    Fail(node, "state machine safety",
         absl::StrCat("n", node.value(), " applied ", Describe(entry),
                      " but ", Describe(*c), " is committed there"));
  }
}

void SafetyChecker::OnDigest(NodeId node, Index applied, uint64_t digest) {
  ++checks_;
  auto [it, inserted] = digests_.emplace(applied, std::make_pair(node, digest));
  if (!inserted && it->second.second != digest) {
    Fail(node, "state machine safety",
         absl::StrCat("n", node.value(), " has state digest ",
                      absl::Hex(digest), " at applied index ", applied.value(),
                      " but n", it->second.first.value(), " had ",
                      absl::Hex(it->second.second)));
  }
}

void SafetyChecker::OnAcknowledge(NodeId node, Index index, Term term) {
  ++checks_;
  acknowledged_.emplace(index, term);
  const EntryDigest* c = CommittedAt(index);
  if (c == nullptr) {
    Fail(node, "acknowledged writes durable",
         absl::StrCat("n", node.value(), " acknowledged a write at index ",
                      index.value(), " before it was committed"));
  } else if (c->term != term) {
    Fail(node, "acknowledged writes durable",
         absl::StrCat("n", node.value(), " acknowledged a write at index ",
                      index.value(), " term ", term.value(), " but ",
                      Describe(*c), " is committed there"));
  }
}

void SafetyChecker::OnVoteGranted(NodeId voter, NodeId candidate, Term term) {
  ++checks_;
  auto [it, inserted] = grants_.emplace(std::make_pair(voter, term), candidate);
  if (!inserted && it->second != candidate) {
    Fail(voter, "vote safety",
         absl::StrCat("n", voter.value(), " granted its vote in term ", term.value(),
                      " to n", candidate.value(), " after granting it to n",
                      it->second.value()));
    return;
  }
  auto& last = last_grant_[voter];
  if (term >= last.first) last = {term, candidate};
}

void SafetyChecker::OnBoot(NodeId node, Term term, NodeId vote) {
  auto it = last_grant_.find(node);
  if (it == last_grant_.end()) return;
  ++checks_;
  const auto [granted_term, candidate] = it->second;
  if (term < granted_term) {
    Fail(node, "votes durable",
         absl::StrCat("n", node.value(), " restarted in term ", term.value(),
                      " after granting its vote in term ", granted_term.value()));
  } else if (term == granted_term && vote != candidate) {
    Fail(node, "votes durable",
         absl::StrCat("n", node.value(), " restarted in term ", term.value(),
                      " with vote n", vote.value(), " after granting its vote to n",
                      candidate.value(), " in that term"));
  }
}

void SafetyChecker::CheckInvariants() const {
  CHECK_EQ(committed_.size(), committed_last_.value());
  CHECK_EQ(committed_terms_.size(), committed_.size());
  for (const auto& [node, log] : logs_) {
    if (!log.entries.empty()) {
      CHECK_EQ(log.entries.front().index, log.snapshot_index.Next());
      CHECK_EQ(log.entries.back().index, log.last_index());
    }
  }
}

}  // namespace blixard::sim

#include "core/raft/log.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "core/base/check.h"
#include "core/base/coverage_mark.h"
#include "core/raft/util.h"

namespace blixard::raft {

RaftLog::RaftLog(const Storage* storage, Logger* logger)
    : storage_(storage),
      unstable_(storage->LastIndex().Next(), logger),
      committed_(storage->FirstIndex().Prev()),
      applying_(storage->FirstIndex().Prev()),
      applied_(storage->FirstIndex().Prev()),
      logger_(logger) {}

Index RaftLog::FirstIndex() const {
  if (auto i = unstable_.MaybeFirstIndex()) return *i;
  return storage_->FirstIndex();
}

Index RaftLog::LastIndex() const {
  if (auto i = unstable_.MaybeLastIndex()) return *i;
  return storage_->LastIndex();
}

Term RaftLog::LastTerm() const {
  // The newest entry is usually unstable: read it without TermAt's range
  // checks and Status (this runs several times per event).
  if (auto t = unstable_.MaybeLastTerm()) return *t;
  absl::StatusOr<Term> t = storage_->TermAt(storage_->LastIndex());
  CHECK(t.ok()) << "term of the last index must be known: " << t.status();
  return *t;
}

absl::StatusOr<Term> RaftLog::TermAt(Index index) const {
  // The valid range is [FirstIndex()-1, LastIndex()]: the entry before the
  // first is the snapshot's, whose term is kept.
  const Index dummy = FirstIndex().Prev();
  if (index < dummy) {
    return absl::OutOfRangeError(absl::StrCat("compacted: term of ", index.value()));
  }
  if (index > LastIndex()) {
    return absl::NotFoundError(absl::StrCat("unavailable: term of ", index.value()));
  }
  if (auto t = unstable_.MaybeTerm(index)) return *t;
  return storage_->TermAt(index);
}

Term RaftLog::ZeroTermOnError(Index index) const {
  absl::StatusOr<Term> t = TermAt(index);
  return t.ok() ? *t : Term(0);
}

bool RaftLog::MatchTerm(Index index, Term term) const {
  absl::StatusOr<Term> t = TermAt(index);
  return t.ok() && *t == term;
}

bool RaftLog::IsUpToDate(Index last_index, Term last_term) const {
  const Term our_term = LastTerm();
  return last_term > our_term ||
         (last_term == our_term && last_index >= LastIndex());
}

Index RaftLog::FindConflict(
    const google::protobuf::RepeatedPtrField<Entry>& entries) const {
  for (const Entry& e : entries) {
    if (!MatchTerm(Index(e.index()), Term(e.term()))) {
      if (Index(e.index()) <= LastIndex()) {
        logger_->Info("found conflict at index ", e.index(),
                      " [existing term: ", ZeroTermOnError(Index(e.index())).value(),
                      ", conflicting term: ", e.term(), "]");
      }
      return Index(e.index());
    }
  }
  return Index(0);
}

std::pair<Index, Term> RaftLog::FindConflictByTerm(Index index, Term term) const {
  // Bounded by the log length: each step moves one index down.
  while (index > Index(0)) {
    absl::StatusOr<Term> our = TermAt(index);
    if (!our.ok()) return {index, Term(0)};
    if (*our <= term) return {index, *our};
    index = index.Prev();
  }
  return {Index(0), Term(0)};
}

RaftLog::AppendResult RaftLog::MaybeAppend(
    Index prev_index, Term prev_term, Index leader_commit,
    google::protobuf::RepeatedPtrField<Entry>* entries, Index* last_new) {
  if (!MatchTerm(prev_index, prev_term)) return AppendResult::kMismatch;
  *last_new = prev_index + static_cast<uint64_t>(entries->size());
  const Index conflict = FindConflict(*entries);
  if (conflict != Index(0)) {
    if (conflict <= committed_) {
      logger_->Error("refusing append: entry ", conflict.value(),
                     " conflicts with committed entry (committed ",
                     committed_.value(), ")");
      return AppendResult::kRefused;
    }
    // A conflict inside our log (not just past its end) drops an
    // uncommitted suffix a deposed leader left here (§5.3).
    if (conflict <= LastIndex()) COVERAGE_MARK(uncommitted_suffix_truncated);
    const uint64_t skip = conflict.Since(prev_index.Next());
    std::vector<Entry> fresh;
    fresh.reserve(static_cast<size_t>(entries->size()) - skip);
    for (int i = static_cast<int>(skip); i < entries->size(); ++i) {
      fresh.push_back(std::move(*entries->Mutable(i)));
    }
    Append(std::move(fresh));
  }
  CommitTo(std::min(leader_commit, *last_new));
  return AppendResult::kAppended;
}

Index RaftLog::Append(std::vector<Entry>&& entries) {
  if (entries.empty()) return LastIndex();
  CHECK_GE(Index(entries.front().index()).Prev(), committed_)
      << "append would overwrite committed entries";
  unstable_.TruncateAndAppend(std::move(entries));
  return LastIndex();
}

absl::StatusOr<std::vector<Entry>> RaftLog::Slice(Index lo, Index hi,
                                                  uint64_t max_bytes) const {
  const Index first = FirstIndex();
  if (lo < first) {
    return absl::OutOfRangeError(absl::StrCat("compacted: slice from ", lo.value(),
                                              ", first is ", first.value()));
  }
  CHECK_LE(lo, hi);
  CHECK_LE(hi, LastIndex().Next());
  std::vector<Entry> out;
  if (lo == hi) return out;
  const Index offset = unstable_.offset();
  if (lo < offset) {
    absl::StatusOr<std::vector<Entry>> stored =
        storage_->Entries(lo, std::min(hi, offset), max_bytes);
    if (!stored.ok()) return stored.status();
    out = std::move(*stored);
    // Storage hit the byte limit: don't look further.
    if (Index(lo + out.size()) < std::min(hi, offset)) return out;
  }
  uint64_t bytes = 0;
  for (const Entry& e : out) bytes += PayloadSize(e);
  if (hi > offset) {
    const Index from = std::max(lo, offset);
    // Room up front: one allocation, not a regrowth per few entries.
    out.reserve(out.size() + hi.Since(from));
    for (Index i = from; i < hi; i = i.Next()) {
      const Entry& e = unstable_.at(i);
      bytes += PayloadSize(e);
      if (!out.empty() && bytes > max_bytes) break;
      out.push_back(e);
    }
  }
  return out;
}

absl::StatusOr<std::vector<Entry>> RaftLog::EntriesFrom(Index lo,
                                                        uint64_t max_bytes) const {
  if (lo > LastIndex()) return std::vector<Entry>();
  return Slice(lo, LastIndex().Next(), max_bytes);
}

absl::Status RaftLog::CopyEntriesFrom(
    Index lo, uint64_t max_bytes, google::protobuf::RepeatedPtrField<Entry>* out,
    uint64_t* bytes) const {
  const Index hi = LastIndex().Next();
  if (lo >= hi) return absl::OkStatus();
  const Index offset = unstable_.offset();
  if (lo < offset) {
    // Stored entries: read through Storage, then continue in unstable.
    absl::StatusOr<std::vector<Entry>> ents = Slice(lo, hi, max_bytes);
    if (!ents.ok()) return ents.status();
    out->Reserve(static_cast<int>(ents->size()));
    for (Entry& e : *ents) {
      *bytes += PayloadSize(e);
      *out->Add() = std::move(e);
    }
    return absl::OkStatus();
  }
  uint64_t total = 0;
  out->Reserve(static_cast<int>(hi.Since(lo)));
  for (Index i = lo; i < hi; i = i.Next()) {
    const Entry& e = unstable_.at(i);
    total += PayloadSize(e);
    if (out->size() > 0 && total > max_bytes) break;
    *out->Add() = e;
    *bytes += PayloadSize(e);
  }
  return absl::OkStatus();
}

void RaftLog::CommitTo(Index index) {
  if (committed_ < index) {
    CHECK_LE(index, LastIndex()) << "commit beyond the last index";
    committed_ = index;
  }
}

bool RaftLog::MaybeCommit(Index max_index, Term term) {
  if (max_index > committed_ && ZeroTermOnError(max_index) == term) {
    CommitTo(max_index);
    return true;
  }
  return false;
}

void RaftLog::AppliedTo(Index index) {
  if (index == Index(0)) return;
  CHECK_LE(index, committed_);
  if (index < applied_) return;
  applied_ = index;
  applying_ = std::max(applying_, index);
}

Index RaftLog::PersistedLastIndex() const {
  // Entries below unstable's offset are in Storage, hence durable.
  if (unstable_.snapshot()) return Index(0);
  return unstable_.offset().Prev();
}

bool RaftLog::HasNextCommittedEntries() const {
  if (HasNextOrInProgressSnapshot()) return false;  // apply the snapshot first
  const Index hi = std::min(committed_, PersistedLastIndex());
  return std::max(applying_, applied_) < hi;
}

std::vector<Entry> RaftLog::NextCommittedEntries(uint64_t max_bytes) const {
  if (!HasNextCommittedEntries()) return {};
  const Index lo = std::max(applying_, applied_).Next();
  const Index hi = std::min(committed_, PersistedLastIndex()).Next();
  absl::StatusOr<std::vector<Entry>> ents = Slice(lo, hi, max_bytes);
  CHECK(ents.ok()) << "committed entries must be readable: " << ents.status();
  return std::move(*ents);
}

absl::StatusOr<Snapshot> RaftLog::GetSnapshot() const {
  if (unstable_.snapshot()) return *unstable_.snapshot();
  return storage_->GetSnapshot();
}

void RaftLog::Restore(Snapshot snapshot) {
  logger_->Info("log [", ToString(), "] starts to restore snapshot [index: ",
                snapshot.metadata().index(), ", term: ", snapshot.metadata().term(),
                "]");
  committed_ = Index(snapshot.metadata().index());
  unstable_.Restore(std::move(snapshot));
}

std::string RaftLog::ToString() const {
  return absl::StrCat("committed=", committed_.value(), ", applied=",
                      applied_.value(), ", unstable.offset=",
                      unstable_.offset().value(), ", unstable.offsetInProgress=",
                      unstable_.offset_in_progress().value(),
                      ", len(unstable.Entries)=", unstable_.size());
}

void RaftLog::CheckInvariants() const {
  unstable_.CheckInvariants();
  CHECK_LE(applied_, applying_);
  CHECK_LE(applying_, committed_);
  CHECK_LE(committed_, LastIndex());
  CHECK_LE(FirstIndex().Prev(), committed_);
  if (!unstable_.snapshot()) {
    CHECK_LE(unstable_.offset(), storage_->LastIndex().Next())
        << "unstable entries must follow the stored log";
  }
}

}  // namespace blixard::raft

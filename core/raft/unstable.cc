#include "core/raft/unstable.h"

#include <algorithm>

#include "core/base/check.h"

namespace blixard::raft {

std::optional<Index> Unstable::MaybeFirstIndex() const {
  if (snapshot_) return Index(snapshot_->metadata().index()).Next();
  return std::nullopt;
}

std::optional<Index> Unstable::MaybeLastIndex() const {
  if (!entries_.empty()) return offset_ + (entries_.size() - 1);
  if (snapshot_) return Index(snapshot_->metadata().index());
  return std::nullopt;
}

std::optional<Term> Unstable::MaybeLastTerm() const {
  if (!entries_.empty()) return Term(entries_.back().term());
  if (snapshot_) return Term(snapshot_->metadata().term());
  return std::nullopt;
}

std::optional<Term> Unstable::MaybeTerm(Index index) const {
  if (index < offset_) {
    if (snapshot_ && Index(snapshot_->metadata().index()) == index) {
      return Term(snapshot_->metadata().term());
    }
    return std::nullopt;
  }
  std::optional<Index> last = MaybeLastIndex();
  if (!last || index > *last) return std::nullopt;
  return Term(entries_[index.Since(offset_)].term());
}

bool Unstable::HasNextEntries() const {
  return offset_in_progress_.Since(offset_) < entries_.size();
}

void Unstable::NextEntries(std::vector<Entry>* out) const {
  const size_t in_progress = offset_in_progress_.Since(offset_);
  out->reserve(out->size() + entries_.size() - in_progress);
  for (size_t i = in_progress; i < entries_.size(); ++i) {
    out->push_back(entries_[i]);
  }
}

const Snapshot* Unstable::NextSnapshot() const {
  if (!snapshot_ || snapshot_in_progress_) return nullptr;
  return &*snapshot_;
}

void Unstable::AcceptInProgress() {
  if (!entries_.empty()) offset_in_progress_ = offset_ + entries_.size();
  if (snapshot_) snapshot_in_progress_ = true;
}

void Unstable::StableTo(Index index, Term term, uint64_t epoch) {
  if (epoch != epoch_) {
    // Truncated since the write was handed out: a later write may overwrite
    // what this one wrote (see the header); that later write reports.
    logger_->Debug("durability report for index ", index.value(), " from epoch ", epoch,
                   " (now ", epoch_, "); ignoring: the log was truncated since");
    return;
  }
  std::optional<Term> t = MaybeTerm(index);
  if (!t) return;  // already stable, or truncated since: nothing to do
  if (index < offset_) return;  // the snapshot's index, not an entry here
  if (*t != term) {
    // The entry was replaced after the write started; the newer write will
    // report its own durability.
    logger_->Debug("entry at ", index.value(), " was replaced (term ",
                   t->value(), " != ", term.value(),
                   "); ignoring stale durability report");
    return;
  }
  const size_t count = index.Next().Since(offset_);
  entries_.erase(entries_.begin(), entries_.begin() + static_cast<long>(count));
  offset_ = index.Next();
  offset_in_progress_ = std::max(offset_in_progress_, offset_);
}

void Unstable::StableSnapTo(Index index) {
  if (snapshot_ && Index(snapshot_->metadata().index()) == index) {
    snapshot_.reset();
    snapshot_in_progress_ = false;
  }
}

void Unstable::Restore(Snapshot snapshot) {
  ++epoch_;
  offset_ = Index(snapshot.metadata().index()).Next();
  offset_in_progress_ = offset_;
  entries_.clear();
  snapshot_ = std::move(snapshot);
  snapshot_in_progress_ = false;
}

void Unstable::TruncateAndAppend(std::vector<Entry>&& entries) {
  if (entries.empty()) return;
  const Index from(entries.front().index());
  const Index end = offset_ + entries_.size();
  if (from == end) {
    // The common case: a plain append.
  } else if (from <= offset_) {
    // Replaces everything unstable (and logically a stored suffix, which the
    // Host truncates when it writes these entries).
    logger_->Info("replace the unstable entries from index ", from.value());
    ++epoch_;
    entries_.clear();
    offset_ = from;
    offset_in_progress_ = offset_;
  } else {
    CHECK_LT(from, end) << "gap in unstable append";
    logger_->Info("truncate the unstable entries before index ", from.value());
    ++epoch_;
    entries_.resize(from.Since(offset_));
    offset_in_progress_ = std::min(offset_in_progress_, from);
  }
  for (Entry& e : entries) entries_.push_back(std::move(e));
}

void Unstable::Slice(Index lo, Index hi, std::vector<Entry>* out) const {
  CHECK_LE(offset_, lo);
  CHECK_LE(lo, hi);
  CHECK_LE(hi, offset_ + entries_.size());
  out->reserve(out->size() + hi.Since(lo));
  for (Index i = lo; i < hi; i = i.Next()) out->push_back(entries_[i.Since(offset_)]);
}

void Unstable::CheckInvariants() const {
  CHECK_LE(offset_, offset_in_progress_);
  CHECK_LE(offset_in_progress_, offset_ + entries_.size());
  if (!entries_.empty()) {
    // The ends in O(1); every entry where expensive checks are on (this
    // runs after every simulated event, and appends keep it by construction).
    CHECK_EQ(entries_.front().index(), offset_.value());
    CHECK_EQ(entries_.back().index(), (offset_ + (entries_.size() - 1)).value());
    CHECK_LE(entries_.front().term(), entries_.back().term());
  }
  if (kExpensiveChecks) {
    for (size_t i = 1; i < entries_.size(); ++i) {
      CHECK_EQ(entries_[i].index(), (offset_ + i).value());
      CHECK_GE(entries_[i].term(), entries_[i - 1].term());
    }
  }
  if (snapshot_) {
    CHECK_LT(Index(snapshot_->metadata().index()), offset_);
    if (!entries_.empty()) {
      CHECK_GE(entries_.front().term(), snapshot_->metadata().term());
    }
  }
  if (snapshot_in_progress_) {
    CHECK(snapshot_.has_value());
  }
}

}  // namespace blixard::raft

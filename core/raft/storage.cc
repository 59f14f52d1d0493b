#include "core/raft/storage.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "core/base/check.h"
#include "core/raft/util.h"

namespace blixard::raft {

MemoryStorage::MemoryStorage() { entries_.emplace_back(); }

absl::StatusOr<InitialState> MemoryStorage::GetInitialState() const {
  return InitialState{hard_state_, snapshot_.metadata().conf_state()};
}

Index MemoryStorage::FirstIndex() const { return offset().Next(); }

Index MemoryStorage::LastIndex() const {
  return offset() + (entries_.size() - 1);
}

absl::StatusOr<std::vector<Entry>> MemoryStorage::Entries(
    Index lo, Index hi, uint64_t max_bytes) const {
  CHECK_LE(lo, hi);
  if (lo <= offset()) {
    return absl::OutOfRangeError(absl::StrCat("compacted: requested ", lo.value(),
                                              ", first is ", FirstIndex().value()));
  }
  if (hi > LastIndex().Next()) {
    return absl::NotFoundError(absl::StrCat("unavailable: requested up to ",
                                            hi.value(), ", last is ",
                                            LastIndex().value()));
  }
  std::vector<Entry> out;
  uint64_t bytes = 0;
  for (Index i = lo; i < hi; i = i.Next()) {
    const Entry& e = entries_[i.Since(offset())];
    bytes += PayloadSize(e);
    if (!out.empty() && bytes > max_bytes) break;
    out.push_back(e);
  }
  return out;
}

absl::StatusOr<Term> MemoryStorage::TermAt(Index index) const {
  if (index < offset()) {
    return absl::OutOfRangeError(absl::StrCat("compacted: term of ", index.value()));
  }
  if (index > LastIndex()) {
    return absl::NotFoundError(absl::StrCat("unavailable: term of ", index.value()));
  }
  return Term(entries_[index.Since(offset())].term());
}

absl::StatusOr<Snapshot> MemoryStorage::GetSnapshot() const {
  if (snapshot_unavailable_) {
    return absl::UnavailableError("snapshot temporarily unavailable");
  }
  return snapshot_;
}

absl::Status MemoryStorage::ApplySnapshot(Snapshot snapshot) {
  const Index index(snapshot.metadata().index());
  if (index <= Index(snapshot_.metadata().index())) {
    return absl::FailedPreconditionError(
        absl::StrCat("snapshot at ", index.value(), " is out of date (have ",
                     snapshot_.metadata().index(), ")"));
  }
  entries_.clear();
  Entry dummy;
  dummy.set_index(snapshot.metadata().index());
  dummy.set_term(snapshot.metadata().term());
  entries_.push_back(std::move(dummy));
  snapshot_ = std::move(snapshot);
  return absl::OkStatus();
}

absl::Status MemoryStorage::Bootstrap(const ConfState& conf_state) {
  if (entries_.size() > 1 || snapshot_.metadata().index() != 0) {
    return absl::FailedPreconditionError("bootstrap of a non-empty storage");
  }
  *snapshot_.mutable_metadata()->mutable_conf_state() = conf_state;
  return absl::OkStatus();
}

absl::Status MemoryStorage::Append(std::vector<Entry> entries) {
  if (entries.empty()) return absl::OkStatus();
  for (size_t i = 1; i < entries.size(); ++i) {
    if (entries[i].index() != entries[i - 1].index() + 1) {
      return absl::InvalidArgumentError("appended entries are not contiguous");
    }
  }
  const Index first = FirstIndex();
  const Index last_new(entries.back().index());
  if (last_new < first) return absl::OkStatus();  // all compacted already
  size_t skip = 0;
  if (Index(entries.front().index()) < first) {
    skip = first.Since(Index(entries.front().index()));
  }
  const Index from(entries[skip].index());
  if (from > LastIndex().Next()) {
    return absl::InvalidArgumentError(
        absl::StrCat("append at ", from.value(), " leaves a gap after ",
                     LastIndex().value()));
  }
  // Truncate the conflicting suffix, then append.
  const size_t start = from.Since(offset());
  entries_.resize(start);
  for (size_t i = skip; i < entries.size(); ++i) {
    entries_.push_back(std::move(entries[i]));
  }
  if (kExpensiveChecks) CheckEntriesFrom(start);
  return absl::OkStatus();
}

absl::Status MemoryStorage::CreateSnapshot(Index index, const ConfState* cs,
                                           std::string data) {
  if (index <= Index(snapshot_.metadata().index())) {
    return absl::FailedPreconditionError(
        absl::StrCat("snapshot at ", index.value(), " is out of date"));
  }
  if (index > LastIndex()) {
    return absl::InvalidArgumentError(
        absl::StrCat("snapshot index ", index.value(), " beyond last index ",
                     LastIndex().value()));
  }
  SnapshotMetadata* md = snapshot_.mutable_metadata();
  md->set_index(index.value());
  md->set_term(entries_[index.Since(offset())].term());
  if (cs != nullptr) *md->mutable_conf_state() = *cs;
  snapshot_.set_data(std::move(data));
  return absl::OkStatus();
}

absl::Status MemoryStorage::Compact(Index index) {
  if (index <= offset()) {
    return absl::OutOfRangeError(absl::StrCat("compacted: already at ",
                                              offset().value()));
  }
  if (index > LastIndex()) {
    return absl::InvalidArgumentError(
        absl::StrCat("compact ", index.value(), " beyond last index ",
                     LastIndex().value()));
  }
  const size_t drop = index.Since(offset());
  Entry dummy;
  dummy.set_index(entries_[drop].index());
  dummy.set_term(entries_[drop].term());
  entries_.erase(entries_.begin(), entries_.begin() + static_cast<long>(drop));
  entries_.front() = std::move(dummy);
  return absl::OkStatus();
}

void MemoryStorage::CheckEntriesFrom(size_t position) const {
  for (size_t i = std::max<size_t>(position, 1); i < entries_.size(); ++i) {
    CHECK_EQ(entries_[i].index(), entries_[i - 1].index() + 1);
    CHECK_GE(entries_[i].term(), entries_[i - 1].term());
  }
}

void MemoryStorage::CheckInvariants() const {
  CHECK(!entries_.empty());
  // O(1): the ends agree with the length. Each entry is checked against its
  // predecessor once, as it enters (Append, where expensive checks are on):
  // only Append adds entries, and Compact and ApplySnapshot only drop them.
  CHECK_EQ(entries_.back().index(), entries_.front().index() + entries_.size() - 1);
  CHECK_GE(entries_.back().term(), entries_.front().term());
  // The snapshot may sit above the first retained entry: the Host keeps a
  // tail of the log below its newest snapshot for followers that are only a
  // little behind, so no ordering between offset() and the snapshot index is
  // an invariant.
}

}  // namespace blixard::raft

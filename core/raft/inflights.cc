#include "core/raft/inflights.h"

#include "core/base/check.h"

namespace blixard::raft {

Inflights::Inflights(size_t count_max, uint64_t bytes_max)
    : count_max_(count_max), bytes_max_(bytes_max) {
  CHECK_GT(count_max, 0u);
}

void Inflights::Add(Index index, uint64_t bytes) {
  CHECK(!Full()) << "inflights window is full";
  if (!entries_.empty()) {
    CHECK_GT(index, entries_.back().index);
  }
  entries_.push_back(Inflight{index, bytes});
  bytes_ += bytes;
}

void Inflights::FreeLE(Index index) {
  while (!entries_.empty() && entries_.front().index <= index) {
    bytes_ -= entries_.front().bytes;
    entries_.pop_front();
  }
}

void Inflights::Reset() {
  entries_.clear();
  bytes_ = 0;
}

bool Inflights::Full() const {
  return entries_.size() >= count_max_ ||
         (bytes_max_ != 0 && bytes_ >= bytes_max_);
}

void Inflights::CheckInvariants() const {
  CHECK_LE(entries_.size(), count_max_);
  if (entries_.empty()) {
    CHECK_EQ(bytes_, 0u);
    return;
  }
  CHECK_LE(entries_.front().index, entries_.back().index);
  if (!kExpensiveChecks) return;
  uint64_t sum = 0;
  for (size_t i = 0; i < entries_.size(); ++i) {
    sum += entries_[i].bytes;
    if (i > 0) {
      CHECK_LT(entries_[i - 1].index, entries_[i].index);
    }
  }
  CHECK_EQ(sum, bytes_);
}

}  // namespace blixard::raft

// Strong integer types for Raft's vocabulary: Term, Index, NodeId.
//
// Mixing a term with an index is a classic Raft bug that the compiler can
// catch: each is its own type, convertible to and from uint64_t only
// explicitly (`Term(3)`, `term.value()`). Only the arithmetic that has a
// meaning is defined: an index advances by a count and the distance between
// two indexes is a count; terms only increase by one; node ids are labels.
// Protobuf fields stay uint64; conversion happens at the boundary.
#ifndef BLIXARD_CORE_BASE_TYPES_H_
#define BLIXARD_CORE_BASE_TYPES_H_

#include <cstdint>
#include <limits>
#include <ostream>

#include "core/base/check.h"

namespace blixard {

// The largest term, index and node id a node accepts from a peer or ever
// reaches on its own. Storage keeps all three in SQLite INTEGER columns,
// which are signed 64-bit: a larger value cannot be written (the store
// CHECKs), so it must be refused where it enters (raft::ValidateMessage,
// raft::ValidateConfig) instead of killing the node on its I/O thread.
inline constexpr uint64_t kSqlIntegerMax =
    static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
// Term::Next() is only ever computed below kTermMax (a node at kTermMax
// does not campaign), so every term the core holds or sends is <= kTermMax.
inline constexpr uint64_t kTermMax = kSqlIntegerMax;
// An entry's index is <= kIndexMax. The core also computes exclusive ends
// one past an entry (LastIndex().Next(), a follower's next index), which
// reach kIndexMax + 1 and are bound into SQLite range queries too.
inline constexpr uint64_t kIndexMax = kSqlIntegerMax - 1;
// Node ids are stored as the vote of a HardState.
inline constexpr uint64_t kNodeIdMax = kSqlIntegerMax;
static_assert(kTermMax <= kSqlIntegerMax, "a term must fit a SQLite INTEGER");
static_assert(kIndexMax + 1 <= kSqlIntegerMax,
              "an exclusive end (index + 1) must fit a SQLite INTEGER");
static_assert(kIndexMax + 1 > kIndexMax, "index + 1 must not wrap");
static_assert(kNodeIdMax <= kSqlIntegerMax, "a node id must fit a SQLite INTEGER");

template <typename Tag>
class StrongId {
 public:
  constexpr StrongId() = default;
  constexpr explicit StrongId(uint64_t value) : value_(value) {}

  constexpr uint64_t value() const { return value_; }

  friend constexpr bool operator==(StrongId a, StrongId b) {
    return a.value_ == b.value_;
  }
  friend constexpr bool operator!=(StrongId a, StrongId b) {
    return a.value_ != b.value_;
  }
  friend constexpr bool operator<(StrongId a, StrongId b) {
    return a.value_ < b.value_;
  }
  friend constexpr bool operator<=(StrongId a, StrongId b) {
    return a.value_ <= b.value_;
  }
  friend constexpr bool operator>(StrongId a, StrongId b) {
    return a.value_ > b.value_;
  }
  friend constexpr bool operator>=(StrongId a, StrongId b) {
    return a.value_ >= b.value_;
  }
  friend std::ostream& operator<<(std::ostream& out, StrongId id) {
    return out << Tag::kPrefix << id.value_;
  }
  template <typename H>
  friend H AbslHashValue(H h, StrongId id) {
    return H::combine(std::move(h), id.value_);
  }

 protected:
  uint64_t value_ = 0;
};

struct TermTag {
  static constexpr const char* kPrefix = "t";
};
struct IndexTag {
  static constexpr const char* kPrefix = "i";
};
struct NodeIdTag {
  static constexpr const char* kPrefix = "n";
};

// A Raft term. Term(0) is "no term yet".
class Term : public StrongId<TermTag> {
 public:
  using StrongId::StrongId;
  // REQUIRES: value() < kTermMax (callers refuse to go further: a CHECK
  // failure here is a bug, never a peer's doing).
  Term Next() const {
    CHECK_LT(value_, kTermMax) << "term would pass kTermMax";
    return Term(value_ + 1);
  }
};

// A position in the Raft log. Index(0) is the empty log's last index.
class Index : public StrongId<IndexTag> {
 public:
  using StrongId::StrongId;
  // REQUIRES: value() <= kIndexMax (the result may be kIndexMax + 1: an
  // exclusive end).
  Index Next() const {
    CHECK_LE(value_, kIndexMax) << "index would pass kIndexMax + 1";
    return Index(value_ + 1);
  }
  // REQUIRES: value() > 0.
  Index Prev() const {
    CHECK_GT(value_, 0u) << "Index(0) has no predecessor";
    return Index(value_ - 1);
  }
  // REQUIRES: the result is <= kIndexMax + 1.
  Index operator+(uint64_t count) const {
    CHECK(value_ <= kIndexMax + 1 && count <= kIndexMax + 1 - value_)
        << "index " << value_ << " + " << count << " would pass kIndexMax + 1";
    return Index(value_ + count);
  }
  // The number of entries from `from` (inclusive) to *this (exclusive).
  // REQUIRES: from <= *this.
  uint64_t Since(Index from) const {
    CHECK_LE(from.value_, value_) << "index distance would be negative";
    return value_ - from.value_;
  }
};

// A node's identity. NodeId(0) means "none" (no leader, no vote).
class NodeId : public StrongId<NodeIdTag> {
 public:
  using StrongId::StrongId;
  constexpr bool is_none() const { return value_ == 0; }
};

inline constexpr NodeId kNoNode{};

}  // namespace blixard

#endif  // BLIXARD_CORE_BASE_TYPES_H_

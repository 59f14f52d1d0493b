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
#include <ostream>

#include "core/base/check.h"

namespace blixard {

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
  constexpr Term Next() const { return Term(value_ + 1); }
};

// A position in the Raft log. Index(0) is the empty log's last index.
class Index : public StrongId<IndexTag> {
 public:
  using StrongId::StrongId;
  constexpr Index Next() const { return Index(value_ + 1); }
  // REQUIRES: value() > 0.
  Index Prev() const {
    CHECK_GT(value_, 0u) << "Index(0) has no predecessor";
    return Index(value_ - 1);
  }
  constexpr Index operator+(uint64_t count) const {
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

#include "sim/checker/linearizability.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "core/base/check.h"

namespace blixard::sim {
namespace {

using Kind = KvOperation::Kind;
using Outcome = KvOperation::Outcome;
using Verdict = LinearizabilityResult::Verdict;

// One key's register: present or absent with a value.
using RegisterState = std::optional<std::string>;

// Applies `op` to `state` if its recorded result is possible there.
bool Step(const KvOperation& op, const RegisterState& state,
          RegisterState* next) {
  switch (op.kind) {
    case Kind::kPut:
      *next = op.value;
      return true;
    case Kind::kDelete:
      *next = std::nullopt;
      return true;
    case Kind::kGet:
      *next = state;
      return op.read == state;
    case Kind::kCas: {
      const bool matches = state == op.expected;
      if (op.outcome == Outcome::kFail) {
        *next = state;
        return !matches;
      }
      if (op.outcome == Outcome::kUnknown && !matches) {
        *next = state;  // it ran and failed: no effect
        return true;
      }
      *next = op.value;
      return matches;
    }
  }
  return false;
}

std::string Describe(const KvOperation& op) {
  std::string text = absl::StrCat("op ", op.id, " (client ", op.client, ") ");
  switch (op.kind) {
    case Kind::kPut:
      absl::StrAppend(&text, "put '", op.value, "'");
      break;
    case Kind::kDelete:
      absl::StrAppend(&text, "delete");
      break;
    case Kind::kGet:
      absl::StrAppend(&text, "get -> ",
                      op.read ? absl::StrCat("'", *op.read, "'") : "absent");
      break;
    case Kind::kCas:
      absl::StrAppend(&text, "cas '", op.expected.value_or("<absent>"),
                      "' -> '", op.value, "'");
      break;
  }
  absl::StrAppend(&text, op.outcome == Outcome::kOk     ? " ok"
                         : op.outcome == Outcome::kFail ? " fail"
                                                        : " unknown",
                  " [", op.invoke_us, ", ",
                  op.complete_us == KvOperation::kNeverCompleted
                      ? std::string("inf")
                      : absl::StrCat(op.complete_us),
                  "]");
  return text;
}

// The search over one key's operations.
class KeySearch {
 public:
  KeySearch(std::vector<const KvOperation*> ops,
            const LinearizabilityLimits& limits)
      : ops_(std::move(ops)), limits_(limits) {
    BuildEvents();
  }

  Verdict Run(std::string* detail) {
    const size_t n = ops_.size();
    std::vector<uint64_t> linearized((n + 63) / 64, 0);
    RegisterState state;
    struct Frame {
      int event;
      RegisterState state;
    };
    std::vector<Frame> stack;
    // The operation that blocked the deepest partial linearization: the
    // most useful one to report.
    size_t deepest = 0;
    size_t blocked_op = 0;
    int event = head_;
    while (head_ != kNil) {
      if (++steps_ > limits_.steps_max_per_key ||
          cache_.size() > limits_.cached_states_max_per_key) {
        *detail = absl::StrCat("search stopped after ", steps_, " steps and ",
                               cache_.size(), " cached states");
        return Verdict::kInconclusive;
      }
      const Event& e = events_[static_cast<size_t>(event)];
      if (e.is_call) {
        const KvOperation& op = *ops_[e.op];
        RegisterState next;
        if (Step(op, state, &next)) {
          linearized[e.op / 64] |= uint64_t{1} << (e.op % 64);
          if (cache_.insert(CacheKey{linearized, next}).second) {
            stack.push_back(Frame{event, std::move(state)});
            state = std::move(next);
            Lift(event);
            event = head_;
            continue;
          }
          linearized[e.op / 64] &= ~(uint64_t{1} << (e.op % 64));
        }
        event = e.next;
      } else {
        // A return whose call could not be placed before it: undo the last
        // choice and try the next candidate.
        if (stack.size() >= deepest) {
          deepest = stack.size();
          blocked_op = e.op;
        }
        if (stack.empty()) {
          *detail = absl::StrCat(
              "no order of the ", n, " operations explains ",
              Describe(*ops_[blocked_op]), " (it cannot follow the longest ",
              "valid prefix of ", deepest, " operations)");
          return Verdict::kNotLinearizable;
        }
        Frame frame = std::move(stack.back());
        stack.pop_back();
        const size_t op = events_[static_cast<size_t>(frame.event)].op;
        linearized[op / 64] &= ~(uint64_t{1} << (op % 64));
        state = std::move(frame.state);
        Unlift(frame.event);
        event = events_[static_cast<size_t>(frame.event)].next;
      }
    }
    return Verdict::kLinearizable;
  }

  uint64_t steps() const { return steps_; }

 private:
  static constexpr int kNil = -1;
  struct Event {
    bool is_call;
    size_t op;
    int64_t time;
    int prev = kNil;
    int next = kNil;
    int match = kNil;  // call <-> return
  };
  struct CacheKey {
    std::vector<uint64_t> linearized;
    RegisterState state;
    bool operator==(const CacheKey& o) const {
      return linearized == o.linearized && state == o.state;
    }
    template <typename H>
    friend H AbslHashValue(H h, const CacheKey& k) {
      return H::combine(std::move(h), k.linearized, k.state);
    }
  };

  void BuildEvents() {
    std::vector<Event> events;
    for (size_t i = 0; i < ops_.size(); ++i) {
      events.push_back(Event{true, i, ops_[i]->invoke_us});
      // An unknown outcome may take effect at any time after the call.
      events.push_back(Event{false, i,
                             ops_[i]->outcome == Outcome::kUnknown
                                 ? KvOperation::kNeverCompleted
                                 : ops_[i]->complete_us});
    }
    // By time; at equal times calls come first, so operations that touch in
    // time count as concurrent (never a false alarm). Ties broken by op order
    // for determinism.
    std::stable_sort(events.begin(), events.end(),
                     [](const Event& a, const Event& b) {
                       if (a.time != b.time) return a.time < b.time;
                       if (a.is_call != b.is_call) return a.is_call;
                       return a.op < b.op;
                     });
    events_ = std::move(events);
    std::vector<int> call_of(ops_.size(), kNil);
    for (size_t i = 0; i < events_.size(); ++i) {
      const int self = static_cast<int>(i);
      events_[i].prev = self - 1;
      events_[i].next = i + 1 < events_.size() ? self + 1 : kNil;
      if (events_[i].is_call) {
        call_of[events_[i].op] = self;
      } else {
        const int call = call_of[events_[i].op];
        CHECK_NE(call, kNil) << "return before call for op " << events_[i].op;
        events_[i].match = call;
        events_[static_cast<size_t>(call)].match = self;
      }
    }
    head_ = events_.empty() ? kNil : 0;
  }

  // Removes a call and its return from the list.
  void Lift(int call) {
    Unlink(call);
    Unlink(events_[static_cast<size_t>(call)].match);
  }
  // Restores them (in reverse order of removal).
  void Unlift(int call) {
    Relink(events_[static_cast<size_t>(call)].match);
    Relink(call);
  }
  void Unlink(int i) {
    Event& e = events_[static_cast<size_t>(i)];
    if (e.prev != kNil) {
      events_[static_cast<size_t>(e.prev)].next = e.next;
    } else {
      head_ = e.next;
    }
    if (e.next != kNil) events_[static_cast<size_t>(e.next)].prev = e.prev;
  }
  void Relink(int i) {
    Event& e = events_[static_cast<size_t>(i)];
    if (e.prev != kNil) {
      events_[static_cast<size_t>(e.prev)].next = i;
    } else {
      head_ = i;
    }
    if (e.next != kNil) events_[static_cast<size_t>(e.next)].prev = i;
  }

  std::vector<const KvOperation*> ops_;
  const LinearizabilityLimits& limits_;
  std::vector<Event> events_;
  int head_ = kNil;
  absl::flat_hash_set<CacheKey> cache_;
  uint64_t steps_ = 0;
};

}  // namespace

const char* VerdictName(Verdict verdict) {
  switch (verdict) {
    case Verdict::kLinearizable:
      return "linearizable";
    case Verdict::kNotLinearizable:
      return "not linearizable";
    case Verdict::kInconclusive:
      return "inconclusive";
  }
  return "?";
}

LinearizabilityResult CheckLinearizable(const std::vector<KvOperation>& history,
                                        const LinearizabilityLimits& limits) {
  // Ordered map: keys are checked in a deterministic order and the first
  // failing key reported is always the same.
  std::map<std::string, std::vector<const KvOperation*>> by_key;
  for (const KvOperation& op : history) {
    CHECK_LE(op.invoke_us, op.complete_us) << "op " << op.id;
    if (op.kind == Kind::kGet && op.outcome != Outcome::kOk) continue;
    if (op.kind != Kind::kCas && op.outcome == Outcome::kFail) continue;
    by_key[op.key].push_back(&op);
  }
  LinearizabilityResult result;
  for (auto& [key, ops] : by_key) {
    ++result.keys_checked;
    result.operations_checked += ops.size();
    KeySearch search(std::move(ops), limits);
    std::string detail;
    const Verdict verdict = search.Run(&detail);
    result.steps += search.steps();
    if (verdict != Verdict::kLinearizable) {
      result.verdict = verdict;
      result.key = key;
      result.detail = absl::StrCat("key '", key, "': ", detail);
      // A definite violation ends the check; an inconclusive key does not
      // hide a violation in a later key.
      if (verdict == Verdict::kNotLinearizable) return result;
    }
  }
  return result;
}

}  // namespace blixard::sim

// Trace order: an independent reader of the simulator's JSON-lines trace
// (format in sim/TRACE.md) that checks what the trace claims about each
// node's apply order, from the text alone.
//
// It parses the lines itself (a small purpose-built JSON field extractor,
// nothing shared with the writer in sim/trace.cc), so a writer that drops,
// reorders or misplaces a line is caught rather than excused by the same
// code. Checked, line by line:
//   - `t` never decreases from one line to the next;
//   - per node, within each lifetime (from the start of the run, or from a
//     `restart` fault line naming the node while it is down, to its `crash`
//     fault line or its `stop` line), `apply` indexes are consecutive,
//     starting from 1 or from a `snapshot` line's index + 1;
//   - a `snapshot` line moves the node's next expected index to index + 1
//     and never goes backwards within a lifetime (its index is at least the
//     last index applied);
//   - no `apply` or `snapshot` line for a node that is down.
// A `restart` line naming a node that is up changes nothing for it (the
// world restarts only crashed nodes; a line may name several). Lines of
// other types are read for `t` only; the header and result lines have no
// `t`.
//
//   TraceOrderChecker checker;
//   for (each line) if (!checker.AddLine(line).ok()) break;
//   // or: absl::Status s = CheckTraceOrder(whole_text);
//
// Errors are INVALID_ARGUMENT naming the line number (from 1) and what was
// expected there; a line that is not a JSON object with the fields its
// type needs is an error too. The first error sticks: later lines are not
// read. Deterministic; not thread-safe.
#ifndef BLIXARD_SIM_CHECKER_TRACE_ORDER_H_
#define BLIXARD_SIM_CHECKER_TRACE_ORDER_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace blixard::sim {

// Bound on one trace line, far above any line the simulator writes (the
// longest is the header of a swarm run): a longer one is refused, so a
// corrupt file cannot make the reader buffer without end.
inline constexpr size_t kTraceLineBytesMax = 1 << 20;
// Bound on distinct node ids one trace may name (the simulator runs at most
// nine): a corrupt file cannot grow the per-node table without end.
inline constexpr size_t kTraceNodesMax = 4096;

class TraceOrderChecker {
 public:
  // Reads the next line (without its '\n'; an empty line is skipped but
  // counted). Returns the checker's status after it: OK, or the first error.
  absl::Status AddLine(absl::string_view line);

  // OK, or the first error found.
  const absl::Status& status() const { return status_; }
  uint64_t lines() const { return lines_; }
  // apply and snapshot lines checked so far.
  uint64_t applies() const { return applies_; }
  uint64_t snapshots() const { return snapshots_; }
  // Lifetimes begun by a `restart` line.
  uint64_t restarts() const { return restarts_; }

 private:
  struct NodeOrder {
    bool down = false;
    uint64_t next_index = 1;  // the index the next apply must have
    // Why next_index is what it is, for the error message.
    std::string because = "a node starts applying at index 1";
    uint64_t changed_line = 0;  // the line that last changed down/next_index
  };

  absl::Status Check(absl::string_view line);
  NodeOrder* Node(uint64_t id, absl::Status* error);

  absl::Status status_;
  uint64_t lines_ = 0;
  uint64_t applies_ = 0;
  uint64_t snapshots_ = 0;
  uint64_t restarts_ = 0;
  bool have_t_ = false;
  int64_t last_t_ = 0;
  uint64_t last_t_line_ = 0;
  std::map<uint64_t, NodeOrder> nodes_;
};

// Checks a whole trace (lines separated by '\n'; a final line without one
// is read too). OK or the first error, as TraceOrderChecker.
absl::Status CheckTraceOrder(absl::string_view text);

}  // namespace blixard::sim

#endif  // BLIXARD_SIM_CHECKER_TRACE_ORDER_H_

// Timeline: a picture of one simulation run as a single self-contained HTML
// file (inline SVG and CSS; no script, no network). Per node over virtual
// time: its role (leaders colored, with their term), crashes and pauses;
// the network's partitions; every client operation as a bar from invoke to
// complete, colored by outcome; and the violation, when there is one.
//
// The simulation feeds it the same events it traces; Render() draws them.
// Deterministic (ordered containers, integer pixel math): the same run
// gives the same bytes.
#ifndef BLIXARD_SIM_TIMELINE_H_
#define BLIXARD_SIM_TIMELINE_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "core/base/types.h"

namespace blixard::sim {

class Timeline {
 public:
  Timeline(uint64_t seed, std::vector<NodeId> nodes);

  void Role(int64_t t_us, NodeId node, absl::string_view role, Term term);
  // kind: crash, restart, pause, resume (node rows); partition,
  // partition_one_way, isolate, bridge, clog (the network row, until heal or
  // unclog); anything else (loss, clock, disk episodes) is only a tooltip
  // mark. `nodes` are the nodes it concerns.
  void Fault(int64_t t_us, absl::string_view kind, const std::vector<NodeId>& nodes);
  void Invoke(int64_t t_us, uint64_t client, uint64_t op_id, absl::string_view op);
  // status: ok, fail or unknown.
  void Complete(int64_t t_us, uint64_t client, uint64_t op_id, absl::string_view status);
  void Violation(int64_t t_us, absl::string_view text);

  // The HTML document for a run that ended at `end_us`.
  std::string Render(int64_t end_us) const;

 private:
  struct Segment {
    int64_t from_us;
    int64_t to_us;  // -1: still open
    std::string kind;
    uint64_t term = 0;
  };
  struct Op {
    int64_t invoke_us;
    int64_t complete_us = -1;
    std::string op;
    std::string status;
  };
  struct Mark {
    int64_t t_us;
    std::string kind;
  };

  void Close(std::vector<Segment>& segments, int64_t t_us);

  uint64_t seed_;
  std::vector<NodeId> nodes_;
  std::map<NodeId, std::vector<Segment>> roles_;
  std::map<NodeId, std::vector<Segment>> outages_;  // crashed / paused
  std::map<NodeId, std::vector<Mark>> marks_;
  std::vector<Segment> network_;  // partitions
  std::map<uint64_t, std::map<uint64_t, Op>> ops_;  // client -> op id -> op
  std::vector<std::pair<int64_t, std::string>> violations_;
};

}  // namespace blixard::sim

#endif  // BLIXARD_SIM_TIMELINE_H_

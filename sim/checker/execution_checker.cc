#include "sim/checker/execution_checker.h"

#include "absl/strings/str_cat.h"
#include "core/base/check.h"

namespace blixard::sim {

void ExecutionChecker::OnLive(NodeId node, const WorkSpec& spec, bool live, bool survived_crash) {
  if (spec.kind != WorkKind::kTask) return;
  ++checks_;
  auto& on = live_[spec.id];
  auto mine = on.find(node);
  if (!live) {
    CHECK(mine != on.end()) << "task " << spec.id << " ended on " << node << " without a start";
    on.erase(mine);
    if (on.empty()) live_.erase(spec.id);
    return;
  }
  if (mine != on.end()) {  // the same execution, now known to have survived
    mine->second.survived_crash = mine->second.survived_crash || survived_crash;
    return;
  }
  ++executions_;
  on.emplace(node, Execution{now_us_, survived_crash});
  if (violation_ || on.size() < 2) return;
  for (const auto& [other, execution] : on) {
    if (other == node) continue;
    violation_ = Violation{
        now_us_, node, "no double run",
        absl::StrCat("task ", spec.id, " started on n", node.value(), " while it still runs on n",
                     other.value(), " (started at t=", execution.started_us, " us; ",
                     execution.survived_crash
                         ? "it survived a process crash of its node"
                         : "its node process never crashed: cut off or declared lost",
                     ")")};
    return;
  }
}

}  // namespace blixard::sim

// ProcessExecutor's event delivery (always through a loop timer, so never
// inside Start, Stop or SetCallback), the periodic output rotation, and the
// queries. Start, Stop and exits are in process_executor.cc; Create and
// recovery in process_executor_recovery.cc.
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/check.h"
#include "net/exec/process_executor.h"
#include "net/exec/task_output.h"

namespace blixard::net {

void ProcessExecutor::Queue(WorkEvent event) {
  CHECK_LT(pending_.size(), 2 * kRunningMax);
  pending_.push_back(std::move(event));
  ScheduleFlush();
}

void ProcessExecutor::ScheduleFlush() {
  // Through a loop timer, so never inside Start, Stop or SetCallback.
  if (!callback_ || pending_.empty() || flush_timer_ != 0) return;
  flush_timer_ = loop_->AddTimerAt(loop_->clock().NowMicros(), [this] {
    flush_timer_ = 0;
    Flush();
  });
}

void ProcessExecutor::Flush() {
  // Bounded by the queue's size now: events the callback causes (a Start
  // from inside it) go to the next round.
  for (size_t n = pending_.size(); n > 0 && !pending_.empty(); --n) {
    WorkEvent event = std::move(pending_.front());
    pending_.pop_front();
    if (event.state == WorkEvent::State::kExited &&
        event.kind == WorkKind::kVm) {
      // Before the callback, which may Start the same name again.
      vms_->Forget(event.id);
    } else if (event.state == WorkEvent::State::kExited) {
      auto it = tasks_.find(event.id);
      CHECK(it != tasks_.end()) << event.id;
      CHECK(it->second->phase == Task::Phase::kExited) << event.id;
      if (it->second->has_record) {
        const std::string path =
            absl::StrCat(it->second->dir, "/", kRecordFileName);
        if (unlink(path.c_str()) != 0 && errno != ENOENT) {
          logger_->Warning(ErrnoStatus("unlink", errno, path).ToString());
        }
      }
      // Before the callback, which may Start the same id again.
      tasks_.erase(it);
    }
    callback_(event);
  }
  ScheduleFlush();
}

void ProcessExecutor::ArmMaintenance() {
  if (maintenance_timer_ != 0) return;
  maintenance_timer_ = loop_->AddTimerAt(
      loop_->clock().NowMicros() + options_.output_check_interval_us, [this] {
        maintenance_timer_ = 0;
        Maintain();
      });
}

void ProcessExecutor::Maintain() {
  bool any_alive = false;
  for (const auto& [id, task] : tasks_) {
    if (task->phase == Task::Phase::kExited) continue;
    any_alive = true;
    absl::StatusOr<bool> rotated =
        RotateOutputIfOver(task->dir, options_.output_file_bytes_max);
    if (!rotated.ok()) {
      logger_->Warning("task ", id,
                       ": rotating output: ", rotated.status().ToString());
    }
  }
  constexpr int kCgroupRemoveAttemptsMax = 10;
  for (auto it = cgroups_to_remove_.begin(); it != cgroups_to_remove_.end();) {
    absl::Status s = RemoveTaskCgroup(it->first);
    if (s.ok() || absl::IsNotFound(s)) {
      it = cgroups_to_remove_.erase(it);
    } else if (++it->second >= kCgroupRemoveAttemptsMax) {
      logger_->Warning("giving up removing ", it->first, ": ", s.ToString());
      it = cgroups_to_remove_.erase(it);
    } else {
      ++it;
    }
  }
  any_alive = vms_->Maintain() || any_alive;
  if (any_alive || !cgroups_to_remove_.empty()) ArmMaintenance();
}

std::vector<std::string> ProcessExecutor::Running(WorkKind kind) const {
  if (kind == WorkKind::kVm) return vms_->Running();
  std::vector<std::string> ids;
  ids.reserve(tasks_.size());
  for (const auto& [id, task] : tasks_) ids.push_back(id);  // sorted map
  return ids;
}

std::optional<pid_t> ProcessExecutor::TaskPid(absl::string_view id) const {
  const Task* task = Find(id);
  if (task == nullptr || task->phase == Task::Phase::kExited) {
    return std::nullopt;
  }
  return task->record.pid;
}

}  // namespace blixard::net

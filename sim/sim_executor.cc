#include "sim/sim_executor.h"

#include "absl/strings/str_cat.h"
#include "core/base/check.h"

namespace blixard::sim {
namespace {

constexpr uint64_t kMillion = 1'000'000;

int64_t Draw(Rng& rng, int64_t lo, int64_t hi) {
  return static_cast<int64_t>(
      rng.Range(static_cast<uint64_t>(lo), static_cast<uint64_t>(hi)));
}

}  // namespace

absl::Status SimExecutorOptions::Validate() const {
  auto bad = [](absl::string_view what) {
    return absl::InvalidArgumentError(
        absl::StrCat("SimExecutorOptions: ", what));
  };
  if (task_start_min_us < 0 || task_start_max_us < task_start_min_us) {
    return bad("task_start range");
  }
  if (task_run_min_us < 0 || task_run_max_us < task_run_min_us) {
    return bad("task_run range");
  }
  if (vm_boot_min_us < 0 || vm_boot_max_us < vm_boot_min_us) {
    return bad("vm_boot range");
  }
  if (stop_min_us < 0 || stop_max_us < stop_min_us) return bad("stop range");
  if (vm_crash_window_us <= 0) return bad("vm_crash_window_us <= 0");
  if (task_failure_per_million > kMillion || start_failure_per_million > kMillion ||
      vm_crash_per_million > kMillion || machine_crash_per_million > kMillion) {
    return bad("a rate above 1e6 per million");
  }
  return absl::OkStatus();
}

SimExecutor::SimExecutor(World* world, SimClock* clock, NodeId node,
                         const SimExecutorOptions& options)
    : world_(world),
      clock_(clock),
      node_(node),
      options_(options),
      rng_(world->NodeStream(node, "executor")),
      crash_rng_(world->NodeStream(node, "crash_kind")) {
  CHECK_OK(options.Validate());
  CHECK(world->HasNode(node));
  CHECK(clock != nullptr);
  world_->AddLifecycleListener([this](NodeId changed, LifecycleChange change) {
    if (changed == node_ && change == LifecycleChange::kCrash) OnCrash();
  });
}

void SimExecutor::SetCallback(Callback callback) {
  CHECK(callback);
  CHECK(!callback_) << "executor callback of " << node_ << " registered twice";
  callback_ = std::move(callback);
  ScheduleDelivery();  // what happened while no process listened
}

void SimExecutor::SetLiveObserver(LiveObserver observer) {
  CHECK(observer);
  CHECK(!live_observer_);
  live_observer_ = std::move(observer);
}

size_t SimExecutor::live() const {
  size_t n = 0;
  for (const auto& [key, work] : work_) n += work.exited ? 0 : 1;
  return n;
}

SimWorkPlan SimExecutor::Draw(const WorkSpec& spec) {
  // Draw every number whatever the planner says, so one plan never shifts
  // the stream for later work.
  SimWorkPlan plan;
  plan.fail_start = rng_.Chance(options_.start_failure_per_million, kMillion);
  if (spec.kind == WorkKind::kTask) {
    plan.start_us =
        sim::Draw(rng_, options_.task_start_min_us, options_.task_start_max_us);
    plan.run_us =
        sim::Draw(rng_, options_.task_run_min_us, options_.task_run_max_us);
    plan.exit_code = rng_.Chance(options_.task_failure_per_million, kMillion)
                         ? static_cast<int32_t>(rng_.Range(1, 125))
                         : 0;
  } else {
    plan.start_us =
        sim::Draw(rng_, options_.vm_boot_min_us, options_.vm_boot_max_us);
    const bool dies = rng_.Chance(options_.vm_crash_per_million, kMillion);
    const int64_t when = sim::Draw(rng_, 0, options_.vm_crash_window_us);
    plan.run_us = dies ? when : -1;
  }
  if (planner_) {
    std::optional<SimWorkPlan> dictated = planner_(spec);
    if (dictated) return *dictated;
  }
  return plan;
}

absl::Status SimExecutor::Start(const WorkSpec& spec) {
  CHECK(!world_->IsCrashed(node_));
  if (spec.id.empty()) return absl::InvalidArgumentError("work id is empty");
  if (spec.command.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        WorkKindName(spec.kind), " ", spec.id, ": command is empty"));
  }
  if (spec.timeout_us < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        WorkKindName(spec.kind), " ", spec.id, ": negative timeout"));
  }
  Key key{spec.kind, spec.id};
  if (work_.count(key) != 0) {
    return absl::AlreadyExistsError(
        absl::StrCat(WorkKindName(spec.kind), " ", spec.id,
                     " is already running on node ", node_.value()));
  }
  if (work_.size() >= kRunningMax) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "node ", node_.value(), " runs ", work_.size(), " (kRunningMax)"));
  }
  const SimWorkPlan plan = Draw(spec);
  CHECK_GE(plan.start_us, 0);
  Work work;
  work.spec = spec;
  work.started_at = clock_->NowMicros();
  work.run_us = plan.run_us;
  work.exit_code = plan.exit_code;
  // The work's life is the machine's: world events, which a pause of the
  // node process does not defer and a process crash does not drop.
  if (plan.fail_start) {
    work.next = world_->ScheduleAfter(plan.start_us, kNoNode, [this, key] {
      Exit(key, WorkEvent::Reason::kFailed, kExitFailed);
    });
  } else {
    work.next = world_->ScheduleAfter(plan.start_us, kNoNode, [this, key] { OnRunning(key); });
  }
  work_.emplace(key, std::move(work));
  ++started_;
  if (live_observer_) live_observer_(node_, spec, /*live=*/true, /*survived_crash=*/false);
  return absl::OkStatus();
}

void SimExecutor::OnRunning(const Key& key) {
  auto it = work_.find(key);
  CHECK(it != work_.end());
  Work& work = it->second;
  CHECK(!work.exited);
  work.running = true;
  work.next = EventId{};
  WorkEvent event;
  event.kind = key.first;
  event.id = key.second;
  event.state = WorkEvent::State::kRunning;
  event.duration_us = clock_->Peek() - work.started_at;
  if (key.first == WorkKind::kTask) {
    const int64_t timeout = work.spec.timeout_us;
    if (timeout > 0 && event.duration_us + work.run_us > timeout) {
      ScheduleTimeout(key);
    } else {
      const int32_t code = work.exit_code;
      work.next = world_->ScheduleAfter(work.run_us, kNoNode, [this, key, code] {
        Exit(key, WorkEvent::Reason::kFinished, code);
      });
    }
  } else if (work.run_us >= 0) {
    work.next = world_->ScheduleAfter(work.run_us, kNoNode, [this, key] {
      Exit(key, WorkEvent::Reason::kFailed, kExitFailed);
    });
  }
  Emit(std::move(event));
}

void SimExecutor::ScheduleTimeout(const Key& key) {
  Work& work = work_.find(key)->second;
  const MonoMicros deadline = work.started_at + work.spec.timeout_us;
  work.next = world_->Schedule(clock_->WorldTimeFor(deadline), kNoNode, [this, key, deadline] {
    // The clock may have slowed since (a drift change): not yet due.
    if (clock_->Peek() < deadline) {
      ScheduleTimeout(key);
      return;
    }
    Exit(key, WorkEvent::Reason::kTimedOut, kExitTimedOut);
  });
}

void SimExecutor::Exit(const Key& key, WorkEvent::Reason reason, int32_t exit_code) {
  auto it = work_.find(key);
  CHECK(it != work_.end());
  Work& work = it->second;
  CHECK(!work.exited);
  work.exited = true;
  work.next = EventId{};
  ++exited_;
  WorkEvent event;
  event.kind = key.first;
  event.id = key.second;
  event.state = WorkEvent::State::kExited;
  event.reason = reason;
  event.exit_code = exit_code;
  event.duration_us = clock_->Peek() - work.started_at;
  std::string output = absl::StrCat(WorkKindName(key.first), " ", key.second,
                                    ": ", work.spec.command);
  for (const std::string& arg : work.spec.args)
    absl::StrAppend(&output, " ", arg);
  absl::StrAppend(&output, "\nexit ", exit_code, " after ", event.duration_us,
                  " us\n");
  if (output.size() > kOutputTailBytesMax) {
    output = output.substr(output.size() - kOutputTailBytesMax);
  }
  event.output_tail = std::move(output);
  if (live_observer_) live_observer_(node_, work.spec, /*live=*/false, work.survived_crash);
  Emit(std::move(event));
}

void SimExecutor::Emit(WorkEvent event) {
  outbox_.push_back(std::move(event));
  ScheduleDelivery();
}

void SimExecutor::ScheduleDelivery() {
  if (outbox_.empty() || !callback_ || world_->IsCrashed(node_)) return;
  if (world_->IsPending(delivery_)) return;
  delivery_ = world_->ScheduleAfter(0, node_, [this] { Deliver(); });
}

void SimExecutor::Deliver() {
  delivery_ = EventId{};
  // The callback may Start or Stop (never Emit: transitions are world
  // events), so the outbox only shrinks here.
  while (!outbox_.empty() && callback_) {
    const WorkEvent event = std::move(outbox_.front());
    outbox_.pop_front();
    if (event.state == WorkEvent::State::kExited) {
      auto it = work_.find(Key{event.kind, event.id});
      CHECK(it != work_.end() && it->second.exited);
      work_.erase(it);  // heard: the id is free again
    }
    callback_(event);
  }
}

bool SimExecutor::Stop(WorkKind kind, absl::string_view id) {
  const Key key{kind, std::string(id)};
  auto it = work_.find(key);
  if (it == work_.end() || it->second.stopping || it->second.exited) return false;
  Work& work = it->second;
  world_->Cancel(work.next);
  work.stopping = true;
  const int32_t code = kind == WorkKind::kTask ? kExitStopped : 0;
  work.next = world_->ScheduleAfter(
      sim::Draw(rng_, options_.stop_min_us, options_.stop_max_us), kNoNode,
      [this, key, code] { Exit(key, WorkEvent::Reason::kStopped, code); });
  return true;
}

std::vector<std::string> SimExecutor::Running(WorkKind kind) const {
  std::vector<std::string> ids;
  for (const auto& [key, work] : work_) {
    if (key.first == kind) ids.push_back(key.second);  // std::map: sorted
  }
  return ids;
}

void SimExecutor::OnCrash() {
  // One draw per crash, whatever runs, so the stream never shifts.
  last_crash_machine_ = crash_rng_.Chance(options_.machine_crash_per_million, kMillion);
  callback_ = nullptr;
  delivery_ = EventId{};  // a node event: dropped with the crashed epoch
  if (!last_crash_machine_) {
    for (auto& [key, work] : work_) {
      if (!work.exited && !work.survived_crash) {
        work.survived_crash = true;
        ++survived_crash_;
        if (live_observer_) live_observer_(node_, work.spec, /*live=*/true, true);
      }
    }
    return;
  }
  for (auto& [key, work] : work_) {
    if (work.exited) continue;  // counted in exited_; its news dies here
    world_->Cancel(work.next);
    ++killed_by_crash_;
    if (live_observer_) live_observer_(node_, work.spec, /*live=*/false, work.survived_crash);
  }
  work_.clear();
  outbox_.clear();
}

void SimExecutor::CheckInvariants() const {
  CHECK_OK(options_.Validate());
  CHECK_LE(work_.size(), kRunningMax);
  CHECK_EQ(started_, exited_ + killed_by_crash_ + live());
  size_t exits_queued = 0;
  for (const WorkEvent& event : outbox_) {
    if (event.state == WorkEvent::State::kExited) ++exits_queued;
  }
  CHECK_EQ(exits_queued, work_.size() - live()) << "an exit neither queued nor delivered";
  if (!outbox_.empty() && callback_ && world_->IsUp(node_)) {
    CHECK(world_->IsPending(delivery_)) << "events wait with no delivery scheduled";
  }
  for (const auto& [key, work] : work_) {
    CHECK(key.first == work.spec.kind);
    CHECK_EQ(key.second, work.spec.id);
    if (work.exited) {
      CHECK(!world_->IsPending(work.next));
      continue;
    }
    // Only a running VM that never dies waits without an event.
    if (!world_->IsPending(work.next)) {
      CHECK(key.first == WorkKind::kVm && work.running && !work.stopping &&
            work.run_us < 0)
          << WorkKindName(key.first) << " " << key.second
          << " has no next event";
    }
  }
}

}  // namespace blixard::sim

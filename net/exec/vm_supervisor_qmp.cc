// VmSupervisor and QMP: waiting for a booting QEMU to say it runs, the boot
// deadline, and the stop escalation (system_powerdown, quit or SIGTERM,
// SIGKILL). See vm_supervisor.h for the contract.
#include <signal.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/check.h"
#include "net/exec/vm_supervisor.h"

namespace blixard::net {

void VmSupervisor::ArmBooting(Vm* vm) {
  CHECK(vm->driver == VmDriverKind::kQemu);
  vm->phase = Vm::Phase::kBooting;
  const MonoMicros now = loop_->clock().NowMicros();
  vm->deadline_timer =
      loop_->AddTimerAt(now + config_.boot_timeout_us,
                        [this, name = vm->name] { OnBootDeadline(name); });
  // QEMU creates its QMP socket a moment after the spawn (after qemu-img):
  // the first attempt usually fails and is retried.
  vm->poll_timer = loop_->AddTimerAt(now, [this, name = vm->name] {
    PollQmp(name);
  });
}

bool VmSupervisor::EnsureQmp(Vm* vm) {
  if (vm->qmp != nullptr && vm->qmp->state() != QmpClient::State::kClosed) {
    return true;
  }
  DropQmp(vm);
  QmpClient::Handlers handlers;
  const std::string name = vm->name;
  handlers.on_ready = [this, name] {
    Vm* v = Find(name);
    // Commands queued before (system_powerdown) went out by themselves.
    if (v != nullptr && v->phase == Vm::Phase::kBooting && v->qmp != nullptr) {
      (void)v->qmp->Execute("query-status");
    }
  };
  handlers.on_reply = [this, name](const QmpClient::Reply& reply) {
    OnQmpReply(name, reply);
  };
  handlers.on_event = [this, name](absl::string_view event) {
    logger_->Debug("vm ", name, ": QMP event ", event);
  };
  handlers.on_closed = [this, name](const absl::Status& why) {
    OnQmpClosed(name, why);
  };
  absl::StatusOr<std::unique_ptr<QmpClient>> client =
      QmpClient::Connect(loop_, vm->dir, std::move(handlers));
  if (!client.ok()) {
    if (!absl::IsUnavailable(client.status())) {
      logger_->Warning("vm ", name, ": ", client.status().ToString());
    }
    return false;
  }
  vm->qmp = std::move(*client);
  return true;
}

void VmSupervisor::DropQmp(Vm* vm) { vm->qmp.reset(); }

void VmSupervisor::PollQmp(const std::string& name) {
  Vm* vm = Find(name);
  CHECK(vm != nullptr && vm->phase == Vm::Phase::kBooting) << name;
  vm->poll_timer = 0;
  if (vm->qmp != nullptr && vm->qmp->state() == QmpClient::State::kReady) {
    // Re-armed after a "not running yet" reply: ask again.
    if (vm->qmp->Execute("query-status").ok()) return;
  }
  if (vm->qmp != nullptr && vm->qmp->state() != QmpClient::State::kClosed) {
    return;  // still negotiating: on_ready asks
  }
  if (EnsureQmp(vm)) return;
  vm->poll_timer = loop_->AddTimerAt(
      loop_->clock().NowMicros() + kQmpPollIntervalUs,
      [this, name] { PollQmp(name); });
}

void VmSupervisor::OnQmpReply(const std::string& name,
                              const QmpClient::Reply& reply) {
  Vm* vm = Find(name);
  if (vm == nullptr) return;
  if (!reply.ok) {
    logger_->Warning("vm ", name, ": QMP ", reply.command, ": ", reply.error);
  }
  if (reply.command != "query-status" || vm->phase != Vm::Phase::kBooting) {
    return;
  }
  auto running = reply.result.fields().find("running");
  if (reply.ok && running != reply.result.fields().end() &&
      running->second.bool_value()) {
    logger_->Info("vm ", name, ": running");
    QueueRunning(vm);
    return;
  }
  // Not yet (QEMU's "prelaunch", "inmigrate", ...): ask again shortly.
  if (vm->poll_timer == 0) {
    vm->poll_timer = loop_->AddTimerAt(
        loop_->clock().NowMicros() + kQmpPollIntervalUs,
        [this, name] { PollQmp(name); });
  }
}

void VmSupervisor::OnQmpClosed(const std::string& name,
                               const absl::Status& why) {
  Vm* vm = Find(name);
  if (vm == nullptr) return;
  logger_->Debug("vm ", name, ": QMP closed: ", why.ToString());
  DropQmp(vm);
  // While booting, reconnect; otherwise the next Stop reconnects (or the
  // pidfd says QEMU is gone, which is what a close usually means).
  if (vm->phase == Vm::Phase::kBooting && vm->poll_timer == 0) {
    vm->poll_timer = loop_->AddTimerAt(
        loop_->clock().NowMicros() + kQmpPollIntervalUs,
        [this, name] { PollQmp(name); });
  }
}

void VmSupervisor::OnBootDeadline(const std::string& name) {
  Vm* vm = Find(name);
  CHECK(vm != nullptr && vm->phase == Vm::Phase::kBooting) << name;
  vm->deadline_timer = 0;
  if (vm->poll_timer != 0) loop_->CancelTimer(vm->poll_timer);
  vm->poll_timer = 0;
  vm->failure_note = absl::StrCat(
      "QEMU did not report running within ",
      config_.boot_timeout_us / kMicrosPerMilli, " ms: killed");
  logger_->Warning("vm ", name, ": ", vm->failure_note);
  // Stopping, so that a Stop now is refused and the exit reads kFailed
  // (failure_note); the pidfd reports the end.
  vm->phase = Vm::Phase::kStopping;
  vm->stop_step = 3;
  SignalGroup(*vm, SIGKILL);
}

void VmSupervisor::StopStep(const std::string& name) {
  Vm* vm = Find(name);
  CHECK(vm != nullptr && vm->phase == Vm::Phase::kStopping) << name;
  vm->deadline_timer = 0;
  const bool qemu = vm->driver == VmDriverKind::kQemu;
  int64_t grace_us = 0;
  switch (++vm->stop_step) {
    case 1:
      // The guest's ACPI power button: a guest that listens shuts down
      // cleanly, and QEMU exits when it powers off.
      if (qemu && EnsureQmp(vm) && vm->qmp->Execute("system_powerdown").ok()) {
        grace_us = config_.powerdown_grace_us;
        break;
      }
      // No QMP (or the process driver): nothing asked the guest, so there
      // is nothing to wait for.
      ++vm->stop_step;
      [[fallthrough]];
    case 2:
      if (qemu && vm->qmp != nullptr &&
          vm->qmp->state() == QmpClient::State::kReady &&
          vm->qmp->Execute("quit").ok()) {
        logger_->Info("vm ", name, ": QMP quit");
      } else {
        SignalGroup(*vm, SIGTERM);  // QEMU quits on SIGTERM too
      }
      grace_us = config_.quit_grace_us;
      break;
    default:
      logger_->Warning("vm ", name, ": still there after quit: SIGKILL");
      SignalGroup(*vm, SIGKILL);
      return;  // the pidfd reports the end
  }
  vm->deadline_timer =
      loop_->AddTimerAt(loop_->clock().NowMicros() + grace_us,
                        [this, name] { StopStep(name); });
}

}  // namespace blixard::net
